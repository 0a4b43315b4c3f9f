"""Figure keys (p2pcore.records): named and parsed in one place, the recipe's figures and the report's charts
agreeing on them."""

from __future__ import annotations

from p2pcore.recipe import task_spec, validate_recipe
from p2pcore.records import (
    KeyParts,
    eval_figures,
    eval_key,
    is_term,
    log_directions,
    parse_key,
    sample_figures,
    sample_key,
    step_figures,
    term_key,
    total_key,
)


def test_keys_are_named_as_metrics_jsonl_logs_them():
    assert eval_key("psnr") == "eval/psnr"
    assert eval_key("fcn_score", "pixel_accuracy") == "eval/fcn_score/pixel_accuracy"
    assert eval_key("l1", direction="b2a") == "eval/b2a/l1"
    assert (sample_key(), sample_key("a2b")) == ("samples/l1", "samples/a2b/l1")
    assert (term_key("G", "l1"), total_key("D")) == ("G/l1", "D/total")


def test_every_key_parses_back_to_its_parts():
    for metric, part, direction in [("psnr", "", ""), ("fcn_score", "class_iou", ""), ("l1", "", "a2b"),
                                    ("fcn_score", "pixel_accuracy", "b2a")]:
        key = eval_key(metric, part, direction)
        assert parse_key(key, {"a2b", "b2a"}) == KeyParts("eval", metric, part, direction)
    assert parse_key(sample_key("a2b")) == KeyParts("samples", "l1", "", "a2b")
    assert parse_key(sample_key()) == KeyParts("samples", "l1")
    assert parse_key("G/gan") == KeyParts("G", "gan") and parse_key("lr") == KeyParts("lr")
    assert is_term("G/gan") and not is_term("G/total") and not is_term("eval/psnr") and not is_term("lr")


def test_directions_are_found_in_a_log_read_without_its_recipe():
    keys = ["G/gan", "samples/a2b/l1", "eval/b2a/psnr", "eval/fcn_score/pixel_accuracy", "samples/l1"]
    assert log_directions(keys) == {"a2b", "b2a"}


def test_the_recipe_figures_are_the_keys_of_this_module(host):
    roles = {"generator_ab": "resnet", "generator_ba": "resnet", "discriminator_a": "patch", "discriminator_b": "patch"}
    recipe = validate_recipe({"task": "cyclegan", "data": {"name": "synthetic_thermal", "size": 32, "paired": False},
                              "model": {role: {"name": name} | ({"conditional": False} if name == "patch" else {})
                                        for role, name in roles.items()},
                              "eval": {"metrics": ["lab_histogram_intersection"]}}, host)
    spec = task_spec(recipe)
    figures = eval_figures(recipe, spec)
    assert {f.direction for f in figures.values()} == {"a2b", "b2a"} and len(figures) > 2  # parts, both ways
    assert all(key == eval_key(f.metric, f.part, f.direction) for key, f in figures.items())
    assert all(parse_key(key, set(spec.directions)) == KeyParts("eval", f.metric, f.part, f.direction)
               for key, f in figures.items())
    assert sample_figures(spec) == {}  # unpaired: no target to compare the samples with
    paired = validate_recipe({"data": {"name": "synthetic_thermal", "size": 32}, "model": {"generator": {"name": "unet",
                              "depth": 5}}, "eval": {"metrics": ["l1"]}}, host)
    assert set(eval_figures(paired, task_spec(paired))) == {eval_key("l1")}
    assert sample_figures(task_spec(paired)) == {"a2b": sample_key()}


def test_a_logged_step_names_each_players_rate_where_it_differs():
    shared = step_figures({"G/gan": 1.0}, rates={"generator": 2e-4, "discriminator": 2e-4}, skipped_files=0,
                          skipped_steps=0)
    assert shared == {"G/gan": 1.0, "lr": 2e-4, "skipped_files": 0, "skipped_steps": 0}
    own = step_figures({}, rates={"generator": 2e-4, "discriminator": 8e-4, "encoder": 2e-4}, skipped_files=0,
                       skipped_steps=0)
    assert own["lr"] == 2e-4 and own["lr/discriminator"] == 8e-4 and "lr/encoder" not in own
    assert parse_key("lr/discriminator") == KeyParts("lr", "discriminator") and not is_term("lr/discriminator")
