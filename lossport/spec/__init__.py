"""The spec model: how an exportable loss or model is described (:class:`Spec`,
:class:`TensorSpec`, value domains) and registered (:func:`register`).

This is what users import to describe their own modules; it depends on nothing in lossport
but :mod:`lossport.errors`.
"""

from lossport.spec.definition import Spec, TensorSpec, output_sum
from lossport.spec.registration import register

__all__ = ["Spec", "TensorSpec", "output_sum", "register"]
