import numpy as np
import pytest
import torch

from ecdiff.diffusionx.labels import priced_strength
from ecdiff.diffusionx.predictors import (CANDIDATE_STRENGTHS, CloudPredictor, EdgePredictor, PredictorConfig, Predictors,
                                        choose_strengths, load_predictors)


def test_candidates():
    assert CANDIDATE_STRENGTHS == (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_choice_is_the_lowest_candidate_within_tolerance_of_the_predicted_max():
    rising = [74, 76, 77, 78, 79.5, 80]  # max 80 at 0.90
    flat = [80] * 6
    peaked = [50, 90, 60, 50, 50, 89.5]  # max 90 at 0.50; 89.5 at 0.90 is higher cost
    predicted = torch.tensor([rising, flat, peaked])
    assert choose_strengths(predicted, 0.0) == [0.9, 0.4, 0.5]
    assert choose_strengths(predicted, 1.0) == [0.8, 0.4, 0.5]  # 79.5 >= 80 - 1
    assert choose_strengths(predicted, 2.5) == [0.7, 0.4, 0.5]  # 78 >= 77.5, 77 is not
    assert choose_strengths(predicted, 40.0) == [0.4, 0.4, 0.4]
    with pytest.raises(ValueError, match="6"):
        choose_strengths(torch.zeros(2, 10), 1.0)


@pytest.mark.parametrize("field", ["edge_tolerance", "cloud_tolerance"])
def test_config_rejects_a_negative_tolerance(field):
    with pytest.raises(ValueError, match="tolerances >= 0"):
        PredictorConfig(**{field: -0.5})


def test_the_priced_label_is_the_lowest_strength_within_the_tolerance_of_the_best():
    assert priced_strength([40, 80, 80, 60, 80, 0]) == 0.5  # tolerance 0: the best, ties to the lower strength
    assert priced_strength([0] * 5 + [20]) == 0.9
    assert priced_strength([100] * 6) == 0.4
    soft = [60.0, 70.0, 75.0, 78.0, 79.5, 80.0]
    assert [priced_strength(soft, t) for t in (0.0, 1.0, 2.0, 5.0, 20.0)] == [0.9, 0.8, 0.7, 0.6, 0.4]


def test_ridge_head_is_the_closed_form_solution():
    rng = np.random.default_rng(0)
    alignment = torch.tensor(rng.uniform(0, 1, size=(30, 5)))
    y = torch.tensor(rng.uniform(0, 100, size=(30, 6)))  # one fidelity column per candidate
    x = CloudPredictor.inputs(alignment)
    assert x.shape == (30, 6) and bool((x[:, -1] == 1).all())
    lam = 2.5
    # Reference: least squares on x stacked over sqrt(lam) I (bias row left out), numpy, all columns at once.
    augmented = np.vstack([x.numpy(), np.sqrt(lam) * np.eye(6)[:5]])
    target = np.concatenate([y.numpy(), np.zeros((5, 6))])
    expected = np.linalg.lstsq(augmented, target, rcond=None)[0]
    torch.testing.assert_close(CloudPredictor.fit(x, y, lam).weight, torch.tensor(expected), rtol=1e-9, atol=1e-9)


def test_mlp_edge_output_is_a_fidelity_per_candidate_in_points():
    torch.manual_seed(0)
    config = PredictorConfig(text_dim=5, hidden=4, edge_kind="mlp")
    out = EdgePredictor(config)(torch.randn(100, config.edge_dim) * 100, torch.rand(100, 5))
    assert out.shape == (100, 6) and out.min() >= 0 and out.max() <= 100


def test_mixture_edge_output_is_the_kinds_experts_weighted_by_their_probabilities():
    config = PredictorConfig(text_dim=1, edit_kinds=2)  # edge_dim 8
    model = EdgePredictor(config)
    # Kind 0: flat 90 whatever the alignment. Kind 1: rises with strength; an aligned previous preview
    # (first attribute probability 1) lifts the low strengths to 90.
    model.experts[0, -1] = 90.0
    model.experts[1, -1] = torch.tensor([10.0, 30, 50, 70, 90, 95])
    model.experts[1, 0] = torch.tensor([80.0, 60, 40, 20, 0, 0])
    with torch.no_grad():
        model.net.weight.zero_()
        model.net.bias.zero_()
    x, unaligned, aligned = torch.randn(1, config.edge_dim), torch.zeros(1, 5), torch.tensor([[1.0, 0, 0, 0, 0]])
    torch.testing.assert_close(model(x, unaligned), torch.tensor([[50.0, 60, 70, 80, 90, 92.5]]))  # even mix
    with torch.no_grad():
        model.net.bias.copy_(torch.tensor([-50.0, 50.0]))  # certain: the second kind
    assert choose_strengths(model(x, unaligned), 1.0) == [0.9] and choose_strengths(model(x, unaligned), 6.0) == [0.8]
    assert choose_strengths(model(x, aligned), 6.0) == [0.4]  # 90 at every strength up to 0.8, 95 at 0.9


@pytest.mark.parametrize("kind", ["mixture", "mlp"])
def test_save_and_load_round_trip(tmp_path, kind):
    config = PredictorConfig(text_dim=5, hidden=4, ridge=0.5, edge_tolerance=2.0, cloud_tolerance=3.0,
                             edge_kind=kind, expert_ridge=0.25)
    torch.manual_seed(1)
    edge = EdgePredictor(config).eval()
    if kind == "mixture":
        edge.experts.copy_(torch.rand(config.edit_kinds, 6, 6) * 100)
    cloud = CloudPredictor(torch.randn(6, 6, dtype=torch.float64))
    Predictors(config, edge, cloud).save(tmp_path, {"note": "test"})
    loaded = load_predictors(tmp_path)
    x, alignment = torch.randn(4, config.edge_dim), torch.rand(4, 5)
    torch.testing.assert_close(loaded.edge(x, alignment), edge(x, alignment))
    assert loaded.config == config
    # float32 storage of the ridge weights: relative error of a float32 cast.
    torch.testing.assert_close(loaded.cloud.weight, cloud.weight, rtol=2**-23, atol=0)


def test_config_rejects_an_unknown_edge_kind():
    with pytest.raises(ValueError, match="edge_kind"):
        PredictorConfig(edge_kind="forest")


def test_missing_folder_and_old_format_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="make predictors"):
        load_predictors(tmp_path / "absent")
    for old in ('{"text_dim": 5, "image_dim": 3, "hidden": 4, "ridge": 1.0, "tolerance": 1.0}',
                '{"text_dim": 5, "image_dim": 3, "hidden": 4, "ridge": 1.0, "edge_tolerance": 1.0, "cloud_tolerance": 1.0}'):
        (tmp_path / "config.json").write_text(old)  # before the tolerances; before the edge kinds (11 candidates)
        with pytest.raises(ValueError, match="retrain"):
            load_predictors(tmp_path)
