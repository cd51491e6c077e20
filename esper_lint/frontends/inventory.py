"""`esper-lint inventory`: every private torch name in use, how often, how well documented,
and what the torch index knows about it, for reviewers and release managers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from esper_lint.analysis.knowledge import TorchKnowledge
from esper_lint.model import ReferenceRecord
from esper_lint.torch_index import format_releases
from esper_lint.torch_index.versions import indexed_releases


@dataclass
class InventoryEntry:
    name: str
    uses: int = 0
    documented: int = 0
    files: set[str] = field(default_factory=set)
    releases: str = ""
    first_release: str | None = None
    replacement: str | None = None
    replacement_since: str | None = None
    missing_in_range: str | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["files"] = sorted(self.files)
        return data


@dataclass
class Inventory:
    entries: list[InventoryEntry]
    supported_range: str | None
    indexed: str


def build_inventory(uses: Iterable[tuple[str, ReferenceRecord]], knowledge: TorchKnowledge) -> Inventory:
    by_name: dict[str, InventoryEntry] = {}
    for path, reference in uses:
        entry = by_name.setdefault(reference.name, InventoryEntry(reference.name))
        entry.uses += 1
        entry.documented += int(reference.documented)
        entry.files.add(path)
    for entry in by_name.values():
        if not knowledge.indexed(entry.name):
            continue
        index = knowledge.index  # loaded for the first indexed name: none in use, no index read
        lookup = index.lookup(entry.name)
        if lookup is not None:
            present = lookup.present_in
            entry.releases = format_releases(present, index.releases) if present else "none"
            entry.first_release = present[0] if present else None
        replacement = index.replacement(entry.name)
        if replacement is not None:
            entry.replacement, entry.replacement_since = replacement.replacement, replacement.public_since
        entry.missing_in_range = knowledge.range_problem(entry.name)
    entries = sorted(by_name.values(), key=lambda e: (-e.uses, e.name))
    releases = indexed_releases()  # the index header's list, the same as `index.releases`
    return Inventory(entries, knowledge.spec, f"{releases[0]}–{releases[-1]}" if releases else "")


def _summary(inventory: Inventory) -> str:
    uses = sum(e.uses for e in inventory.entries)
    documented = sum(e.documented for e in inventory.entries)
    scope = f"supported range {inventory.supported_range}" if inventory.supported_range else "no supported range known"
    counts = f"{len(inventory.entries)} private torch name(s), {uses} use(s), {documented} documented"
    return f"{counts}; {scope}; index: torch {inventory.indexed}"


def render_text(inventory: Inventory) -> str:
    lines = [_summary(inventory), ""]
    for e in inventory.entries:
        facts = [f"{e.uses} use(s), {e.documented} documented, {len(e.files)} file(s)"]
        if e.releases:
            facts.append(f"in torch {e.releases}")
        if e.replacement:
            facts.append(f"public replacement {e.replacement} (since {e.replacement_since})")
        if e.missing_in_range:
            facts.append(f"RANGE GAP: {e.missing_in_range}")
        lines.append(f"{e.name}\n    " + "; ".join(facts))
    return "\n".join(lines) + "\n"


def render_json(inventory: Inventory) -> str:
    payload = {
        "supported_range": inventory.supported_range,
        "indexed_releases": inventory.indexed,
        "names": [e.to_json() for e in inventory.entries],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|")


def render_markdown(inventory: Inventory) -> str:
    lines = [
        "# Private torch API inventory",
        "",
        _summary(inventory) + ".",
        "",
        "| private name | uses | documented | files | torch releases | public replacement | gaps in supported range |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for e in inventory.entries:
        replacement = f"`{e.replacement}` (since {e.replacement_since})" if e.replacement else ""
        lines.append(
            f"| `{_cell(e.name)}` | {e.uses} | {e.documented} | {len(e.files)} | {_cell(e.releases)} | "
            f"{_cell(replacement)} | {_cell(e.missing_in_range)} |"
        )
    return "\n".join(lines) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}
