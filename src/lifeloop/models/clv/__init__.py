"""Customer lifetime value (客户终身价值): BG/NBD purchase counts, Gamma-Gamma spend, and their discounted CLV.

One model family per module on a shared base (:mod:`.base`) with ``fit`` / ``predict`` / ``save`` / ``load``;
the RFM summary they are fitted on is a separate pure function (:func:`rfm_summary`).
"""

from lifeloop.models.clv.base import FORMAT_VERSION, ClvModel, load_model
from lifeloop.models.clv.bgnbd import BetaGeoModel
from lifeloop.models.clv.gamma_gamma import GammaGammaModel
from lifeloop.models.clv.rfm import rfm_summary
from lifeloop.models.clv.value import customer_lifetime_value, score_customers

__all__ = ["FORMAT_VERSION", "BetaGeoModel", "ClvModel", "GammaGammaModel", "customer_lifetime_value",
           "load_model", "rfm_summary", "score_customers"]
