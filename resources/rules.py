"""The configuration hub: business rules from one YAML file, validated per section."""

from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pydantic
import yaml
from pydantic import Field

# libyaml's safe loader where PyYAML was built with it: ten times faster on the rules file, read per step
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Section = TypeVar("Section", bound=pydantic.BaseModel)


class RulesError(ValueError):
    """The rules file is missing, unreadable or has a bad value; the message names file and field."""


class RulesResource(dg.ConfigurableResource):
    """Reads `RULES_FILE` (default dagster_project/rules.yaml); each domain validates its own section."""

    path: str = Field(default="dagster_project/rules.yaml", description="RULES_FILE: the business rules.")

    def section(self, name: str, model: type[Section]) -> Section:
        """The section `name`, validated as `model`; errors name the file and the field."""
        document = self._document()
        if name not in document:
            raise RulesError(f"{self.path}: no section {name!r} (RULES_FILE)")
        try:
            return model.model_validate(document[name])
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{name}.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
            )
            raise RulesError(f"{self.path}: {problems}") from None

    def _document(self) -> dict[str, Any]:
        try:
            document = yaml.load(Path(self.path).read_text(encoding="utf-8"), Loader=SAFE_LOADER)
        except OSError as exc:
            raise RulesError(f"cannot read the rules file {self.path} (RULES_FILE): {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise RulesError(f"{self.path} is not valid YAML: {exc}") from None
        if not isinstance(document, dict):
            raise RulesError(f"{self.path}: expected a mapping of sections at the top level")
        return document
