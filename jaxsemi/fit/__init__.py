"""Fit model parameters to measured Hall data: load, convert, fit with honest uncertainties.

* ``load_hall_data(path, ...) -> HallData`` — CSV and instrument exports (delimiter, decimal
  comma, encoding and metadata lines detected), units in the header.
* conversions: ``resistivity_to_conductivity``, ``sheet_resistivity``, ``symmetrize_field``,
  ``gate_to_density``, ``carrier_density``, ``density_to_mu`` (differentiable),
  ``second_harmonic_response``.
* ``fit(predict, params0, x, y, sigma=None, ...) -> FitResult`` — weighted least squares with
  any optax optimizer, joint fits (a list of ``Term``s), ``Positive``/``Bounded`` transforms.
* ``hall_predictor(model_factory, grid, kT=...) -> predict(params, n)`` — σ_xy at a carrier
  density (residual doping, μ from the model's own density of states, Hall conductivity).
* ``load_example_data()`` — synthetic σ_xy vs density of a magnetic TI surface (see ``_example``).
"""

from .._carriers import carrier_density as carrier_density
from .._carriers import density_to_mu as density_to_mu
from ._convert import PER_1E12_CM2 as PER_1E12_CM2
from ._convert import SecondHarmonic as SecondHarmonic
from ._convert import gate_to_density as gate_to_density
from ._convert import resistivity_to_conductivity as resistivity_to_conductivity
from ._convert import second_harmonic_response as second_harmonic_response
from ._convert import sheet_resistivity as sheet_resistivity
from ._convert import symmetrize_field as symmetrize_field
from ._data import HallData as HallData
from ._data import load_hall_data as load_hall_data
from ._data import parse_unit as parse_unit
from ._example import EXAMPLE as EXAMPLE
from ._example import example_data_path as example_data_path
from ._example import load_example_data as load_example_data
from ._example import magnetic_surface as magnetic_surface
from ._example import make_example_data as make_example_data
from ._fit import FitResult as FitResult
from ._fit import Term as Term
from ._fit import chi2 as chi2
from ._fit import fit as fit
from ._predict import hall_predictor as hall_predictor
from ._transforms import AbstractTransform as AbstractTransform
from ._transforms import Bounded as Bounded
from ._transforms import Identity as Identity
from ._transforms import Positive as Positive
