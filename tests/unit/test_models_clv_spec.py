"""config/models.yaml's CLV models (kind: clv): their settings, defaults and refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lifeloop.config.shelf import ModelsConfig, ModelSpec
from lifeloop.models import catalogue
from lifeloop.models.clv.shelf import ClvShelfModel


def test_a_clv_model_needs_no_offer_or_features_and_takes_the_bg_nbd_gamma_gamma_estimator():
    spec = ModelSpec.model_validate({"name": "clv", "kind": "clv", "clv": {"horizon_days": 180, "margin": 0.004}})
    assert spec.estimator == "bg_nbd_gamma_gamma" and spec.features == () and spec.offer is None
    assert (spec.clv.horizon_days, spec.clv.discount_rate, spec.clv.margin) == (180, 0.10, 0.004)
    assert catalogue.for_spec(spec) is ClvShelfModel


@pytest.mark.parametrize(("clv", "field"), [({"horizon_days": 7}, "horizon_days"), ({"discount_rate": 1.5},
                                            "discount_rate"), ({"margin": 0}, "margin"), ({"horizn_days": 90},
                                                                                            "horizn_days")])
def test_bad_clv_settings_are_refused_naming_the_field(clv, field):
    with pytest.raises(ValidationError, match=field):
        ModelsConfig.model_validate({"models": [{"name": "clv", "kind": "clv", "clv": clv}]})


def test_a_clv_model_cannot_take_a_classifier_estimator():
    with pytest.raises(ValidationError, match="a clv model cannot use estimator 'scorecard'"):
        ModelSpec.model_validate({"name": "clv", "kind": "clv", "estimator": "scorecard"})
