"""The models the service declares to BentoML, so that a built Bento carries them.

``bentoml build`` records and packs every BentoML model a service declares as a class
attribute. akhbar's models are chosen per task at run time (``AKHBAR_<TASK>_MODEL``, the
promoted model, the shipped default: :mod:`akhbar.serving.core.store`), so each declaration
here looks its model up only when BentoML asks for it: ``bentoml build`` (which then records
the exact version, so a promoted model goes into the next Bento) and ``bentoml serve`` before
it starts the workers. Importing the service module does not, so tests and tools that import
it never touch the model store.

Each recorded model carries an alias naming the tasks it serves (``akhbar:topic,stance,summary``);
inside the built Bento, :func:`~akhbar.serving.core.store.bento_models` reads those aliases back,
and the service loads the models the Bento was built with, not whatever the serving machine
has promoted.
"""

from __future__ import annotations

from typing import Any

import bentoml
from bentoml.models import BentoModel

from akhbar.models.tasks import TASKS
from akhbar.serving.core.config import ScoringConfig
from akhbar.serving.core.store import ModelRef, ModelStoreError, bento_alias


class TaskModel(BentoModel):
    """The stored model that serves ``task``, found on first use (see the module docstring).

    A subclass of :class:`bentoml.models.BentoModel` whose ``tag`` is computed instead of
    given; BentoML's own lookup, packing and resolution then apply unchanged.
    """

    def __init__(self, task: str) -> None:
        object.__setattr__(self, "task", task)  # BentoModel is a frozen attrs class

    def _refs(self) -> dict[str, ModelRef]:
        """Every task's model, resolved once per declaration."""
        if "refs" not in self.__dict__:
            self.__dict__["refs"] = ScoringConfig.from_env().resolve_models(TASKS)
        return self.__dict__["refs"]

    @property
    def tag(self) -> bentoml.Tag:  # type: ignore[override]
        ref = self._refs()[self.task]
        if ref.tag is None:
            raise ModelStoreError(
                f"AKHBAR_{self.task.upper()}_MODEL is the bundle directory {ref.path}, which a "
                f"Bento cannot carry; import it with `akhbar models import {ref.path} --task "
                f"{self.task}`, then promote it or set the variable to its tag, and build again."
            )
        return bentoml.Tag.from_taglike(ref.tag)

    def to_info(self, alias: str | None = None) -> Any:
        """BentoML's record of the model, with the alias naming every task it serves."""
        shared = [t for t, ref in self._refs().items() if ref.tag == str(self.tag)]
        return super().to_info(alias or bento_alias(shared))

    def resolve(self, base_path: Any = None) -> Any:
        """The stored model (None for a bundle directory used in place: nothing to fetch)."""
        if self._refs()[self.task].tag is None:
            return None
        return super().resolve(base_path)

    def __repr__(self) -> str:
        return f"TaskModel({self.task!r})"
