"""How ``./scripts/test`` spreads the suite over pytest-xdist workers (``--dist loadscope``).

A work unit is a whole test module, so a module's own servers (module-scoped fixtures) start once and
its tests keep their order. The few long single tests (each drives a Node suite for minutes) are the
exception: each is a unit of its own, handed out first and at most one per worker at a time, so the
run is never serial in them. The session-scoped ``server`` fixture runs once per worker.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling

# Modules whose every test is long (minutes): the Parse JS SDK and Parse Dashboard suites per backend.
LONG_TEST_MODULES = ("tests/sdk_runner/", "tests/dashboard_runner/")


def is_long(scope: str) -> bool:
    return scope.startswith(LONG_TEST_MODULES)


class ModuleScheduling(LoadScopeScheduling):
    """loadscope by module (classes too stay with their module), long tests one per unit, first."""

    def _split_scope(self, nodeid: str) -> str:
        if is_long(nodeid):
            return nodeid
        return nodeid.split("::", 1)[0]

    def _assign_work_unit(self, node: Any) -> None:
        # The base class takes the first unit of the queue (largest modules first); move the unit this
        # node should take next to the front: a long test unless the node is still running one.
        busy_with_long = any(is_long(scope) and not all(tests.values())
                             for scope, tests in self.assigned_work.get(node, {}).items())
        for scope in self.workqueue:
            if is_long(scope) != busy_with_long:
                self.workqueue.move_to_end(scope, last=False)
                break
        super()._assign_work_unit(node)
