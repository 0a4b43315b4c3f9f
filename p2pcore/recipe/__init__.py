"""Recipes: TOML files validated by pydantic against the live registry, without torch.

The package's modules, each with one job: `files` (safe TOML reading, `extends`, `--set`), `sections`
(the pydantic models of a recipe's tables), `wiring` (checks against what the task declares) and
`validate` (validating data and loading files). This facade exports the names callers use.
"""

from p2pcore.recipe.files import (
    MAX_EXTENDS,
    MAX_RECIPE_BYTES,
    MAX_RECIPE_DEPTH,
    apply_overrides,
    locate,
    merge,
    origins,
    parse_override,
    read_toml,
    read_with_extends,
)
from p2pcore.recipe.sections import (
    EvalConfig,
    InitConfig,
    LossSpec,
    OptimConfig,
    PlayerOptim,
    Recipe,
    Section,
    TrainConfig,
    TranslateConfig,
)
from p2pcore.recipe.validate import load_recipe, validate_recipe
from p2pcore.recipe.wiring import (
    check_evaluation,
    check_sizes,
    check_wiring,
    declared,
    resolve_eval,
    task_spec,
)
from p2pcore.records import Figure, eval_figures, sample_figures

__all__ = [
    "MAX_EXTENDS", "MAX_RECIPE_BYTES", "MAX_RECIPE_DEPTH", "EvalConfig", "Figure", "InitConfig", "LossSpec",
    "OptimConfig", "PlayerOptim", "Recipe", "Section", "TrainConfig", "TranslateConfig", "apply_overrides",
    "check_evaluation", "check_sizes", "check_wiring", "declared", "eval_figures", "load_recipe", "locate", "merge",
    "origins", "parse_override", "read_toml", "read_with_extends", "resolve_eval", "sample_figures", "task_spec",
    "validate_recipe",
]
