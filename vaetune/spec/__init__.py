"""The search-space file: its schema, its distributions, and validation with clear errors.

A search-space YAML holds fixed values and, for any hyperparameter under data, model or train, a
distribution written as a one-key mapping, e.g. ``beta: {loguniform: [0.001, 10]}``. Every user
mistake raises :class:`SpecError`, whose message names the file, the dotted key, the bad value and
what is accepted; the CLI prints it without a traceback.

Modules: `_yaml` (the loader), `_errors` (SpecError), `_config` (the sections and `Config`),
`_validate` (dict -> Config, stored configs of earlier layouts), `_distributions`, `_space`
(SearchSpace: load, override, split, validate, flatten), `_plan` (SearchPlan: what a space runs
when searched, worked out once), `_reference` (the key reference of docs/search-spaces.md,
generated from the sections).
"""

from __future__ import annotations

from vaetune.spec._config import (
    AugmentConfig,
    Config,
    DataConfig,
    ResourcesConfig,
    SearchConfig,
    SplitConfig,
    TrackingConfig,
    architecture_config,
)
from vaetune.spec._distributions import DISTRIBUTIONS, Distribution
from vaetune.spec._errors import SpecError
from vaetune.spec._plan import BETA, SEED, SearchPlan, TrialSchedule, asha_rungs, epochs_at
from vaetune.spec._reference import embed_reference, reference_yaml
from vaetune.spec._shipped import describe, shipped_space, shipped_spaces
from vaetune.spec._space import (
    SEARCHABLE_SECTIONS,
    SearchSpace,
    flatten,
    load_space,
    parse_override,
    set_dotted,
    space_from_dict,
)
from vaetune.spec._validate import stored_config, validate_config
from vaetune.spec._yaml import YamlLoader, yaml_load

__all__ = [
    "BETA", "DISTRIBUTIONS", "SEED", "SearchPlan", "TrialSchedule", "asha_rungs", "epochs_at", "SEARCHABLE_SECTIONS", "AugmentConfig", "Config", "DataConfig",
    "Distribution", "ResourcesConfig", "SearchConfig",
    "SearchSpace", "SpecError", "SplitConfig", "TrackingConfig", "YamlLoader",
    "architecture_config", "describe", "embed_reference", "flatten", "load_space", "parse_override",
    "reference_yaml", "set_dotted", "shipped_space", "shipped_spaces", "space_from_dict", "stored_config", "validate_config",
    "yaml_load",
]
