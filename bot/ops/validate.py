"""``debtbot validate``: ``rasa data validate`` plus the product's own checks of the Rasa project.

Each check is a function over the loaded project (:func:`load_project`) that returns
:class:`Problem` s; :func:`validate` runs them all. ``python -m bot.ops.validate`` prints a table
and exits 1 on any problem. The checks:

``rasa_data_validate``
    ``rasa data validate --fail-on-warnings`` run in the project directory, as ``make
    rasa-validate`` does. When it fails, each warning that makes it fail becomes a problem (the
    warnings Rasa prints but never fails on, "not used in any story or rule" and "listed in the
    domain file, but is not found in the NLU training data", are left out).

``response_languages``
    Every response says the right language to both. Rasa's own choice of variant is replayed
    (:func:`select_variants`, the same order as ``rasa.core.nlg.generator``: conditional variants
    for the channel, plain ones for the channel, conditional ones without a channel, plain ones
    without a channel) for a speaker of each language and every combination of the other slots
    the variants are conditioned on. A Spanish speaker must get a variant conditioned on
    ``language: es``; an English one a variant conditioned on ``language: en`` or on no language
    (a variant without a language condition is the English default).

``email_variant``
    Where a response has a variant for a channel (``channel: email``), a speaker of each
    language on that channel gets that channel's variant, in their language.

``debt_before_verification``
    No response that speaks of the debt can be uttered by a rule or story before the person is
    verified. A response speaks of the debt when one of its variants that is not itself
    conditioned on ``verified: true`` uses a placeholder of :data:`DEBT_PLACEHOLDERS` (or one
    starting with :data:`DEBT_PLACEHOLDER_PREFIXES`), or when it is named in
    :data:`DEBT_RESPONSES_IN_WORDS` (it offers payment or a plan in words).

    The proof is a data-flow analysis of the ``verified`` slot over the rules and stories (not a
    search of their text). Each rule or story is walked step by step with the set of values
    ``verified`` may hold:

    - a flow that starts with a user message can fire at any turn, so it starts with every
      value the slot can take (its initial value, the values any step sets, true and false);
      a rule with ``conversation_start: true`` starts with the initial value;
    - a rule's ``condition: slot_was_set: verified: X`` restricts that to X;
    - a flow that starts with ``action: A`` (or whose condition is ``active_loop: F``) can only
      continue where A was run (or F was active) in some other flow: it starts with the
      values ``verified`` had there. These sets are computed to a fixed point, so a chain like
      "verified -> action_disclose -> action_pay_in_full -> utter_settlement_declined" is
      followed through several rules;
    - ``slot_was_set: verified: X`` sets the value; ``or:`` takes the union of its branches;
    - running a form (``action: F`` or ``active_loop: F``) utters its ``utter_ask_<slot>``
      responses.

    A debt response uttered at a step where ``verified`` may be anything but true is a problem.
    Other slots and conditions are ignored, which only adds paths: the check can warn about a
    path Rasa would never take, never miss one it models. Its limits: what custom actions
    utter (``action_disclose`` sends ``utter_balance``) and the slots they set without a
    ``slot_was_set`` step in the data are not seen here; those actions check verification at
    run time themselves and are covered by the action server's tests. Responses sent by the
    product outside Rasa are not checked either.

``examples_per_language``
    Every intent of the domain a person can type (not ``EXTERNAL_*``, sent by the product) has at
    least ``min_examples`` examples in English and in Spanish. An NLU file's language comes
    from its name (``en.yml``, ``nlu_es.yml``); in a file of both languages (``crisis.yml``)
    each example's language is read by :func:`dialogue.language.detect_language`, and an
    example it cannot tell counts for neither.

``example_under_two_intents``
    No example text appears under two intents, within a language or across the languages'
    files (normalised: entity annotations ``[x](y)`` / ``[x]{...}`` reduced to ``x``, lower
    case, white space collapsed).

``review_file``
    The review file the ops console's NLU inbox labels messages into (``ops.review_file``,
    by default ``data/nlu/review.yml`` in the project; ``bot.ops.nlu_inbox.label``), before it
    is trained: no example twice in it, nor already in the other NLU data under the same intent
    (a duplicate); no example of it under another intent anywhere (a conflict: reported here,
    not again by ``example_under_two_intents``); every intent of it in the domain (a new intent
    labelled in the inbox must be added to domain.yml, with responses and rules, before
    training); no email, phone number, date of birth, long number or handle left unscrubbed
    (``bot.ops.nlu_inbox.find_details``; the report shows the example scrubbed, never the
    detail). An absent review file is fine.

``config_thresholds``
    ``config.yml``: the FallbackClassifier's ``threshold`` and ``ambiguity_threshold`` and the
    RulePolicy's ``core_fallback_threshold`` lie strictly between 0 and 1; a FallbackClassifier
    exists when a rule or story reacts to ``nlu_fallback``; and each of the product's own
    confidence bars on the top intent (:data:`PRODUCT_CONFIDENCES`, today the opt-out bar
    :data:`dialogue.opt_out.CONFIDENT`) lies in (0, 1) and is not below the FallbackClassifier's
    threshold: below it the bar would never be tested, since a message that unsure becomes
    ``nlu_fallback`` before it reaches the action (the bar would silently be the fallback's).
    The runner-up bar of dialogue/actions/preferences.py (``_CARRY_ON_CONFIDENCE``) is about
    the second intent, whose confidence is below the top one by nature, so it is not compared.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.ops.nlu_inbox import find_details, normalise_example, scrub
from dialogue.language import detect_language
from dialogue.opt_out import CONFIDENT

LANGUAGES = ("en", "es")
#: A response variant without a language condition is read as this language.
DEFAULT_LANGUAGE = "en"
_LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
LANGUAGE_SLOT = "language"
VERIFIED_SLOT = "verified"

#: Placeholders whose value names the debt: the amount owed, who it is owed to, the settlement
#: figure, a payment link, the list of plans on offer (``{options}``).
DEBT_PLACEHOLDERS = frozenset({"balance", "creditor", "settlement", "link", "options"})
#: ... and every placeholder about a plan (``{plan_summary}``, ``{plan_schedule}``...).
DEBT_PLACEHOLDER_PREFIXES = ("plan_",)
#: Responses that speak of paying or of a plan in words, with no placeholder to show it.
DEBT_RESPONSES_IN_WORDS = frozenset(
    {
        "utter_choices",  # buttons: pay in full, a payment plan
        "utter_hardship_options",  # pause, token payments, spreading it out
        "utter_settlement_declined",  # the full amount, a payment plan
        "utter_ask_plan_offer",
        "utter_ask_plan_confirmed",
        "utter_plan_change",
        "utter_plan_not_understood",
    }
)

#: The product's own confidence bars on the top intent, checked against config.yml's fallback.
PRODUCT_CONFIDENCES: Mapping[str, float] = {"dialogue.opt_out.CONFIDENT": CONFIDENT}

#: Rasa's defaults when config.yml leaves a threshold out.
_FALLBACK_DEFAULTS = {"threshold": 0.3, "ambiguity_threshold": 0.1}
_CORE_FALLBACK_DEFAULT = 0.3

RASA_DATA_VALIDATE = "rasa_data_validate"
RESPONSE_LANGUAGES = "response_languages"
EMAIL_VARIANT = "email_variant"
DEBT_BEFORE_VERIFICATION = "debt_before_verification"
EXAMPLES_PER_LANGUAGE = "examples_per_language"
EXAMPLE_UNDER_TWO_INTENTS = "example_under_two_intents"
REVIEW_FILE = "review_file"
CONFIG_THRESHOLDS = "config_thresholds"
PROJECT_FILES = "project_files"

_MAX_COMBINATIONS = 4096


@dataclass(frozen=True)
class Problem:
    """One finding."""

    check: str
    #: File and, where known, the response / intent / rule / story name and line.
    where: str
    #: In words: what is wrong and how to fix it.
    message: str


class ProjectError(ValueError):
    """The project's files cannot be read."""


# --- loading -------------------------------------------------------------------------------------


class _Node(dict[str, Any]):
    """A YAML mapping that remembers its line and its keys' lines (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Node:
    loader.flatten_mapping(node)
    mapping = _Node(loader.construct_pairs(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {
        str(key.value): key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)
    }
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line(value: object, key: str | None = None) -> int:
    if isinstance(value, _Node):
        return value.key_lines.get(key, value.line) if key else value.line
    return 0


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 - a SafeLoader
    except (OSError, yaml.YAMLError) as e:
        raise ProjectError(f"{path}: {e}") from e


@dataclass(frozen=True)
class Example:
    intent: str
    text: str
    where: str  # file
    line: int
    language: str | None


@dataclass(frozen=True)
class Flow:
    """A rule or a story."""

    kind: str  # "rule" or "story"
    name: str
    where: str  # file
    line: int
    condition: tuple[Any, ...]
    steps: tuple[Any, ...]
    conversation_start: bool = False

    @property
    def label(self) -> str:
        return f"{self.where}: {self.kind} '{self.name}' (line {self.line})"


@dataclass(frozen=True)
class Project:
    root: Path
    domain: Mapping[str, Any]
    config: Mapping[str, Any]
    examples: tuple[Example, ...]
    flows: tuple[Flow, ...]

    def rel(self, name: str) -> str:
        """A file of the project as reports name it (``rasa_project/domain.yml``)."""
        return f"{self.root.name}/{name}"


def _file_language(path: Path) -> str | None:
    parts = re.split(r"[_\-.]", path.stem.lower()) + [p.lower() for p in path.parent.parts[-1:]]
    found = [lang for lang in LANGUAGES if lang in parts]
    return found[0] if len(found) == 1 else None


def _examples_of(block: Mapping[str, Any], where: str, file_language: str | None) -> Iterator[Example]:
    intent = block.get("intent")
    raw = block.get("examples")
    if not isinstance(intent, str) or raw is None:
        return
    first = _line(block, "examples") + 1
    if isinstance(raw, str):
        items: list[tuple[str, int]] = []
        for offset, text in enumerate(raw.split("\n")):
            text = text.strip()
            if text.startswith("- "):
                items.append((text[2:].strip(), first + offset))
            elif text == "-":
                continue
    elif isinstance(raw, list):
        items = [(str(i.get("text", "")) if isinstance(i, Mapping) else str(i), _line(i)) for i in raw]
    else:
        return
    for text, line in items:
        if not text:
            continue
        language = file_language or detect_language(_strip_entities(text))
        yield Example(intent, text, where, line, language)


def load_project(project_dir: Path) -> Project:
    """Read domain.yml, config.yml and every YAML file under data/ (NLU, rules, stories)."""
    root = Path(project_dir)
    if not (root / "domain.yml").is_file():
        raise ProjectError(f"{root}: no domain.yml (is this a Rasa project directory?)")
    domain = _load_yaml(root / "domain.yml") or {}
    config = (_load_yaml(root / "config.yml") or {}) if (root / "config.yml").is_file() else {}
    examples: list[Example] = []
    flows: list[Flow] = []
    data = root / "data"
    paths = sorted(p for p in data.rglob("*") if p.suffix in (".yml", ".yaml")) if data.is_dir() else []
    for path in paths:
        content = _load_yaml(path)
        if not isinstance(content, Mapping):
            continue
        where = f"{root.name}/{path.relative_to(root).as_posix()}"
        language = _file_language(path)
        for block in content.get("nlu") or []:
            if isinstance(block, Mapping):
                examples.extend(_examples_of(block, where, language))
        for kind in ("rule", "story"):
            for item in content.get("rules" if kind == "rule" else "stories") or []:
                if not isinstance(item, Mapping):
                    continue
                flows.append(
                    Flow(
                        kind=kind,
                        name=str(item.get(kind, "?")),
                        where=where,
                        line=_line(item),
                        condition=tuple(item.get("condition") or ()),
                        steps=tuple(item.get("steps") or ()),
                        conversation_start=bool(item.get("conversation_start", False)),
                    )
                )
    return Project(root, domain, config, tuple(examples), tuple(flows))


# --- responses: Rasa's choice of variant ---------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    response: str
    line: int
    channel: str | None
    conditions: tuple[tuple[str, Any], ...]
    texts: tuple[str, ...]  # the text and the buttons' titles

    @property
    def language(self) -> str | None:
        for name, value in self.conditions:
            if name == LANGUAGE_SLOT:
                return str(value).casefold()
        return None

    def speaks(self, language: str) -> bool:
        return (self.language or DEFAULT_LANGUAGE) == language

    def placeholders(self) -> set[str]:
        return {m for text in self.texts for m in re.findall(r"\{(\w+)\}", text)}

    def requires(self, slot: str, value: object) -> bool:
        return any(name == slot and value_equal(v, value) for name, v in self.conditions)


def response_variants(domain: Mapping[str, Any]) -> dict[str, list[Variant]]:
    out: dict[str, list[Variant]] = {}
    for name, raw in (domain.get("responses") or {}).items():
        variants = []
        for item in raw or []:
            if not isinstance(item, Mapping):
                continue
            conditions = tuple(
                (str(c.get("name")), c.get("value"))
                for c in item.get("condition") or []
                if isinstance(c, Mapping) and c.get("type", "slot") == "slot"
            )
            texts = [str(item.get("text") or "")]
            texts += [str(b.get("title", "")) for b in item.get("buttons") or [] if isinstance(b, Mapping)]
            channel = item.get("channel")
            variants.append(
                Variant(str(name), _line(item), str(channel) if channel else None, conditions, tuple(texts))
            )
        out[str(name)] = variants
    return out


def value_equal(filled: object, wanted: object) -> bool:
    """Rasa's comparison of a slot value with a condition's value."""
    if isinstance(filled, str) and isinstance(wanted, str):
        return filled.casefold() == wanted.casefold()
    return filled == wanted


def select_variants(variants: Sequence[Variant], channel: str, slots: Mapping[str, Any]) -> list[Variant]:
    """The variants Rasa 3.6 chooses from (``ResponseVariationFilter.responses_for_utter_action``)."""
    conditional = [
        v for v in variants if v.conditions and all(value_equal(slots.get(n), w) for n, w in v.conditions)
    ]
    plain = [v for v in variants if not v.conditions]
    for group in (
        [v for v in conditional if v.channel == channel],
        [v for v in plain if v.channel == channel],
        [v for v in conditional if v.channel is None],
        [v for v in plain if v.channel is None],
    ):
        if group:
            return group
    return []


class _Other:
    """A value of a text slot that no condition names."""

    def __repr__(self) -> str:
        return "<another value>"


_OTHER = _Other()
#: The output channel of a channel without variants of its own (SMS, Telegram).
_PLAIN_CHANNEL = "<a channel without its own variant>"


def _slot_values(domain: Mapping[str, Any], slot: str, named: Iterable[Any]) -> list[Any]:
    spec = (domain.get("slots") or {}).get(slot) or {}
    values: list[Any] = list(named)
    kind = spec.get("type")
    if kind == "bool":
        values += [True, False]
    elif kind == "categorical":
        values += list(spec.get("values") or [])
    else:
        values.append(_OTHER)
    if spec.get("initial_value") is None:
        values.append(None)
    unique: list[Any] = []
    for v in values:
        if not any(type(v) is type(u) and value_equal(v, u) for u in unique):
            unique.append(v)
    return unique


def _situations(domain: Mapping[str, Any], variants: Sequence[Variant]) -> Iterator[dict[str, Any]]:
    """Every combination of the values of the slots the variants are conditioned on (but language)."""
    named: dict[str, list[Any]] = defaultdict(list)
    for v in variants:
        for name, value in v.conditions:
            if name != LANGUAGE_SLOT:
                named[name].append(value)
    names = sorted(named)
    choices = [_slot_values(domain, n, named[n]) for n in names]
    for i, combo in enumerate(itertools.product(*choices)):
        if i >= _MAX_COMBINATIONS:
            return
        yield dict(zip(names, combo, strict=True))


def _describe(situation: Mapping[str, Any]) -> str:
    if not situation:
        return ""
    parts = ", ".join(f"{k}={'null' if v is None else str(v).lower()}" for k, v in situation.items())
    return f" when {parts}"


def _fix_hint(language: str, channel: str | None) -> str:
    on = f" and `channel: {channel}`" if channel else ""
    return (
        f"add a variant with `condition: [{{type: slot, name: {LANGUAGE_SLOT}, value: {language}}}]`{on}"
        + (" (or one without a language condition, the English default)" if language == "en" else "")
    )


def check_response_languages(project: Project) -> list[Problem]:
    """Every response has an English and a Spanish variant, whatever its other conditions."""
    problems = []
    for name, variants in response_variants(project.domain).items():
        plain = [v for v in variants if v.channel is None]
        for language in LANGUAGES:
            for situation in _situations(project.domain, plain):
                chosen = select_variants(variants, _PLAIN_CHANNEL, {**situation, LANGUAGE_SLOT: language})
                wrong = [v for v in chosen if not v.speaks(language)]
                if chosen and not wrong:
                    continue
                who = _LANGUAGE_NAMES[language]
                if not chosen:
                    what = f"a {who} speaker gets no variant at all{_describe(situation)}"
                else:
                    given = _LANGUAGE_NAMES.get(wrong[0].language or DEFAULT_LANGUAGE, "?")
                    what = f"a {who} speaker gets the {given} variant of line {wrong[0].line}"
                    what += _describe(situation)
                problems.append(
                    Problem(
                        RESPONSE_LANGUAGES,
                        _response_where(project, name),
                        f"{name} has no {who} variant: {what}; {_fix_hint(language, None)}.",
                    )
                )
                break
    return problems


def _response_where(project: Project, name: str) -> str:
    line = _line(project.domain.get("responses"), name)
    return f"{project.rel('domain.yml')}: response '{name}' (line {line})"


def check_email_variant(project: Project) -> list[Problem]:
    """Where a response has a variant for a channel, it has it in both languages."""
    problems = []
    for name, variants in response_variants(project.domain).items():
        for channel in sorted({v.channel for v in variants if v.channel}):
            for language in LANGUAGES:
                for situation in _situations(project.domain, variants):
                    chosen = select_variants(variants, channel, {**situation, LANGUAGE_SLOT: language})
                    wrong = [v for v in chosen if v.channel != channel or not v.speaks(language)]
                    if chosen and not wrong:
                        continue
                    who = _LANGUAGE_NAMES[language]
                    if not chosen:
                        got = "no variant at all"
                    else:
                        w = wrong[0]
                        got = (
                            f"the {_LANGUAGE_NAMES.get(w.language or DEFAULT_LANGUAGE, '?')} "
                            f"{'plain' if w.channel is None else w.channel} variant of line {w.line}"
                        )
                    problems.append(
                        Problem(
                            EMAIL_VARIANT,
                            _response_where(project, name),
                            f"{name} has a `channel: {channel}` variant but none in {who}: a {who} speaker "
                            f"on {channel} gets {got}{_describe(situation)}; {_fix_hint(language, channel)}.",
                        )
                    )
                    break
    return problems


# --- the debt before verification -----------------------------------------------------------------


def debt_responses(domain: Mapping[str, Any]) -> dict[str, str]:
    """Response name -> what in it speaks of the debt, for responses with such a variant that is
    not conditioned on ``verified: true``."""
    out: dict[str, str] = {}
    for name, variants in response_variants(domain).items():
        for v in variants:
            if v.requires(VERIFIED_SLOT, True):
                continue
            named = sorted(
                p
                for p in v.placeholders()
                if p in DEBT_PLACEHOLDERS or p.startswith(DEBT_PLACEHOLDER_PREFIXES)
            )
            if named:
                out[name] = "names " + ", ".join("{" + p + "}" for p in named)
                break
            if name in DEBT_RESPONSES_IN_WORDS:
                out[name] = "speaks of paying or of a plan"
                break
    return out


def _norm(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


_State = frozenset[str]


@dataclass(frozen=True)
class _Utterance:
    response: str
    state: _State
    flow: Flow
    line: int
    via: str | None  # the form that asks it


def _slot_items(step: Any) -> Iterator[tuple[str, object, bool]]:
    """(slot, value, has_value) of a ``slot_was_set`` step or condition."""
    items = step.get("slot_was_set") if isinstance(step, Mapping) else None
    if isinstance(items, Mapping):
        items = [items]
    for item in items or []:
        if isinstance(item, Mapping):
            for slot, value in item.items():
                yield str(slot), value, True
        else:
            yield str(item), None, False


class _VerificationFlow:
    """The data-flow analysis of the ``verified`` slot described in the module docstring."""

    def __init__(self, project: Project) -> None:
        self.project = project
        slots = project.domain.get("slots") or {}
        spec = slots.get(VERIFIED_SLOT) or {}
        self.initial: _State = frozenset({_norm(spec.get("initial_value"))})
        seen = {"true", "false"} | set(self.initial)
        for flow in project.flows:
            for step in (*flow.condition, *self._all_steps(flow.steps)):
                for slot, value, has_value in _slot_items(step):
                    if slot == VERIFIED_SLOT and has_value:
                        seen.add(_norm(value))
        self.every: _State = frozenset(seen)
        forms = project.domain.get("forms") or {}
        self.asks: dict[str, list[str]] = {
            str(form): [f"utter_ask_{slot}" for slot in (spec or {}).get("required_slots") or []]
            for form, spec in forms.items()
        }
        self.at_action: dict[str, set[str]] = defaultdict(set)
        self.in_loop: dict[str, set[str]] = defaultdict(set)
        self.utterances: list[_Utterance] = []

    def _all_steps(self, steps: Iterable[Any]) -> Iterator[Any]:
        for step in steps:
            yield step
            if isinstance(step, Mapping) and isinstance(step.get("or"), list):
                yield from self._all_steps(step["or"])

    def _entry(self, flow: Flow) -> _State:
        state = set(self.initial if flow.conversation_start else self.every)
        for item in flow.condition:
            if not isinstance(item, Mapping):
                continue
            for slot, value, has_value in _slot_items(item):
                if slot == VERIFIED_SLOT and has_value:
                    state &= {_norm(value)}
            loop = item.get("active_loop")
            if loop:
                state &= self.in_loop[str(loop)]
        first = flow.steps[0] if flow.steps else None
        if isinstance(first, Mapping):
            if first.get("action"):
                state &= self.at_action[str(first["action"])]
            elif first.get("active_loop"):
                state &= self.in_loop[str(first["active_loop"])]
        return frozenset(state)

    def _initial_loop(self, flow: Flow) -> str | None:
        for item in flow.condition:
            if isinstance(item, Mapping) and item.get("active_loop"):
                return str(item["active_loop"])
        return None

    def _walk(self, flow: Flow, record: bool) -> None:
        state = self._entry(flow)
        if not state:
            return  # never reached
        loop = self._initial_loop(flow)
        last_action: str | None = None
        for step in flow.steps:
            state, loop, last_action = self._step(flow, step, state, loop, last_action, record)
            if loop:
                self.in_loop[loop] |= state

    def _step(
        self, flow: Flow, step: Any, state: _State, loop: str | None, last: str | None, record: bool
    ) -> tuple[_State, str | None, str | None]:
        if not isinstance(step, Mapping):
            return state, loop, last
        line = _line(step)
        if isinstance(step.get("or"), list):
            union: set[str] = set()
            for branch in step["or"]:
                after, _, _ = self._step(flow, branch, state, loop, last, record)
                union |= after
            return frozenset(union), loop, last
        if "intent" in step or "user" in step:
            return state, loop, None
        if "action" in step:
            action = str(step["action"])
            self.at_action[action] |= state
            if record:
                self.utterances.append(_Utterance(action, state, flow, line, None))
            if action in self.asks:
                loop = action
                self._asks(flow, action, state, line, record)
            return state, loop, action
        if "active_loop" in step:
            active = step["active_loop"]
            if active:
                loop = str(active)
                self._asks(flow, loop, state, line, record)
            else:
                loop = None
            return state, loop, last
        if "slot_was_set" in step:
            for slot, value, has_value in _slot_items(step):
                if slot == VERIFIED_SLOT:
                    state = frozenset({_norm(value)}) if has_value else self.every
            if last:
                self.at_action[last] |= state
            return state, loop, last
        return state, loop, last

    def _asks(self, flow: Flow, form: str, state: _State, line: int, record: bool) -> None:
        if record:
            for ask in self.asks.get(form, []):
                self.utterances.append(_Utterance(ask, state, flow, line, form))

    def run(self) -> list[_Utterance]:
        while True:
            before = (
                {k: set(v) for k, v in self.at_action.items()},
                {k: set(v) for k, v in self.in_loop.items()},
            )
            for flow in self.project.flows:
                self._walk(flow, record=False)
            after = (
                {k: set(v) for k, v in self.at_action.items()},
                {k: set(v) for k, v in self.in_loop.items()},
            )
            if after == before:
                break
        for flow in self.project.flows:
            self._walk(flow, record=True)
        return self.utterances


def check_debt_before_verification(project: Project) -> list[Problem]:
    """No response about the debt is uttered by a rule or story where ``verified`` may not be true."""
    slots = project.domain.get("slots") or {}
    if VERIFIED_SLOT not in slots:
        return [
            Problem(
                DEBT_BEFORE_VERIFICATION,
                f"{project.rel('domain.yml')}: slots",
                f"there is no `{VERIFIED_SLOT}` slot, so nothing proves the debt is only named after "
                "verification; add the slot (bool, initial_value false, influence_conversation true).",
            )
        ]
    debt = debt_responses(project.domain)
    problems: dict[tuple[str, str, int], Problem] = {}
    for u in _VerificationFlow(project).run():
        if u.response not in debt or u.state <= {"true"}:
            continue
        may = " or ".join(sorted(u.state - {"true"}))
        how = f"{u.via} asks {u.response}, which" if u.via else u.response
        guard = (
            "the rule has no `condition: - slot_was_set: - verified: true`"
            if u.flow.kind == "rule"
            else "the story does not set `verified: true`"
        )
        key = (u.response, u.flow.label, u.line)
        problems[key] = Problem(
            DEBT_BEFORE_VERIFICATION,
            f"{u.flow.label}, step at line {u.line}",
            f"{how} {debt[u.response]}; it can be said here while `{VERIFIED_SLOT}` may be {may}: {guard} "
            "and no earlier step sets it. Guard the rule with that condition (or start it after a step "
            "that only happens once verified), or send the response from a custom action that checks "
            "verification.",
        )
    return list(problems.values())


# --- NLU -------------------------------------------------------------------------------------------

_ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def _strip_entities(text: str) -> str:
    return _ENTITY.sub(r"\1", text)


def _typed_intents(project: Project) -> list[str]:
    intents = []
    for item in project.domain.get("intents") or []:
        name = next(iter(item)) if isinstance(item, Mapping) else str(item)
        if not str(name).startswith("EXTERNAL_"):
            intents.append(str(name))
    return intents


def check_examples_per_language(project: Project, *, min_examples: int = 10) -> list[Problem]:
    """Every intent a person can type has at least ``min_examples`` examples in each language."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for e in project.examples:
        if e.language:
            counts[e.intent, e.language] += 1
    problems = []
    for intent in _typed_intents(project):
        short = [(lang, counts[intent, lang]) for lang in LANGUAGES if counts[intent, lang] < min_examples]
        if short:
            have = ", ".join(f"{_LANGUAGE_NAMES[lang]} {n}" for lang, n in short)
            problems.append(
                Problem(
                    EXAMPLES_PER_LANGUAGE,
                    f"{project.rel('data/nlu')}: intent '{intent}'",
                    f"{intent} has too few examples ({have}; at least {min_examples} each): add real ways "
                    f"people say it to data/nlu/<language>.yml.",
                )
            )
    return problems


def check_example_under_two_intents(project: Project, *, review_where: str | None = None) -> list[Problem]:
    """No (normalised) example text under two intents, within or across languages (those with an
    example of the review file ``review_where`` are :func:`check_review_file`'s)."""
    by_text: dict[str, list[Example]] = defaultdict(list)
    for e in project.examples:
        by_text[normalise_example(e.text)].append(e)
    problems = []
    for text, examples in by_text.items():
        intents = sorted({e.intent for e in examples})
        if len(intents) < 2 or any(e.where == review_where for e in examples):
            continue
        places = "; ".join(f"{e.where} line {e.line} ({e.intent})" for e in examples)
        problems.append(
            Problem(
                EXAMPLE_UNDER_TWO_INTENTS,
                places,
                f"'{text}' is an example of {', '.join(intents)}: the model cannot learn both; keep it "
                "under the intent it means and delete it (or reword it) under the other.",
            )
        )
    return problems


# --- the NLU inbox's review file -------------------------------------------------------------------

#: Where the review file is in a project when no other is given (``ops.review_file``'s default).
DEFAULT_REVIEW_FILE = Path("data") / "nlu" / "review.yml"


def _review_where(project: Project, path: Path) -> str:
    try:
        return project.rel(path.resolve().relative_to(project.root.resolve()).as_posix())
    except ValueError:
        return str(path)


def _review_examples(project: Project, path: Path, where: str) -> tuple[list[Example], list[Example]]:
    """(the review file's examples, every other example of the project)."""
    others = [e for e in project.examples if e.where != where]
    if any(e.where == where for e in project.examples):
        return [e for e in project.examples if e.where == where], others
    content = _load_yaml(path)  # outside data/ (or empty): read on its own
    examples: list[Example] = []
    for block in (content.get("nlu") or []) if isinstance(content, Mapping) else []:
        if isinstance(block, Mapping):
            examples.extend(_examples_of(block, where, _file_language(path)))
    return examples, others


def check_review_file(project: Project, review_file: Path | None = None) -> list[Problem]:
    """The review file the NLU inbox writes: duplicates, conflicts, intents not in the domain,
    scrubbing left undone (nothing when there is no review file)."""
    path = Path(review_file) if review_file is not None else project.root / DEFAULT_REVIEW_FILE
    if not path.is_file():
        return []
    where = _review_where(project, path)
    try:
        review, others = _review_examples(project, path, where)
    except ProjectError as exc:
        return [Problem(REVIEW_FILE, where, f"the review file cannot be read: {exc}")]
    by_text: dict[str, list[Example]] = defaultdict(list)
    for example in review + others:
        by_text[normalise_example(example.text)].append(example)
    problems: list[Problem] = []
    for example in review:
        problems += _review_example_problems(example, by_text[normalise_example(example.text)], where)
    known = {
        str(next(iter(i))) if isinstance(i, Mapping) else str(i) for i in project.domain.get("intents") or []
    }
    for intent in dict.fromkeys(example.intent for example in review):
        if intent not in known:
            message = (
                f"{intent} is a new intent labelled in the NLU inbox, not in the domain: add it to "
                "domain.yml's intents and give it responses/rules before training."
            )
            problems.append(Problem(REVIEW_FILE, f"{where}: intent '{intent}'", message))
    return problems


def _review_example_problems(example: Example, same_text: list[Example], where: str) -> list[Problem]:
    """One review example's duplicate, conflicts (inside the review file, once: at the later line)
    and details left unscrubbed."""
    label = f"{example.where} line {example.line}: intent '{example.intent}'"
    shown = scrub(example.text)  # a report may end up in a CI log: never a detail left in an example
    earlier = [o for o in same_text if o is not example and (o.where != where or o.line < example.line)]
    problems = []
    twice = [o for o in earlier if o.intent == example.intent]
    if twice:
        message = (
            f"'{shown}' is already an example of {example.intent} ({twice[0].where} line "
            f"{twice[0].line}): a duplicate teaches nothing; delete it from the review file."
        )
        problems.append(Problem(REVIEW_FILE, label, message))
    for other in (o for o in earlier if o.intent != example.intent):
        message = (
            f"'{shown}' is labelled {example.intent} here but is an example of {other.intent} in "
            f"{other.where}: one text cannot teach two intents; keep it under the intent it means and "
            "delete the other."
        )
        problems.append(Problem(REVIEW_FILE, f"{label} and {other.where} line {other.line} ({other.intent})",
                                message))  # fmt: skip
    kinds = sorted({detail.kind for detail in find_details(example.text)})
    if kinds:
        message = (
            f"an example still holds a {' and a '.join(kinds)}: write it scrubbed, as "
            f"'{shown}' (the NLU inbox scrubs what it writes; this was added by hand)."
        )
        problems.append(Problem(REVIEW_FILE, label, message))
    return problems


# --- config.yml ------------------------------------------------------------------------------------


def _component(config: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any] | None:
    for item in config.get(section) or []:
        if isinstance(item, Mapping) and str(item.get("name", "")).rsplit(".", 1)[-1] == name:
            return item
    return None


def check_config_thresholds(
    project: Project, *, product_confidences: Mapping[str, float] = PRODUCT_CONFIDENCES
) -> list[Problem]:
    """config.yml's thresholds in (0, 1) and the product's own bars not below the fallback's."""
    where = project.rel("config.yml")
    problems = []

    def number(component: Mapping[str, Any], key: str, default: float, what: str) -> float | None:
        value = component.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            problems.append(
                Problem(
                    CONFIG_THRESHOLDS,
                    f"{where}: {what} {key} (line {_line(component, key)})",
                    f"{what}'s {key} is {value!r}: it must be a number strictly between 0 and 1 "
                    f"(Rasa's default is {default}).",
                )
            )
            return None
        return float(value)

    fallback = _component(project.config, "pipeline", "FallbackClassifier")
    threshold: float | None = None
    if fallback is None:
        if any("nlu_fallback" in str(step) for f in project.flows for step in f.steps):
            problems.append(
                Problem(
                    CONFIG_THRESHOLDS,
                    f"{where}: pipeline",
                    "the rules react to nlu_fallback but the pipeline has no FallbackClassifier: add one "
                    "(threshold, ambiguity_threshold) after the intent classifier.",
                )
            )
    else:
        threshold = number(fallback, "threshold", _FALLBACK_DEFAULTS["threshold"], "FallbackClassifier")
        number(
            fallback, "ambiguity_threshold", _FALLBACK_DEFAULTS["ambiguity_threshold"], "FallbackClassifier"
        )
    rule_policy = _component(project.config, "policies", "RulePolicy")
    if rule_policy is not None:
        number(rule_policy, "core_fallback_threshold", _CORE_FALLBACK_DEFAULT, "RulePolicy")
    for name, bar in product_confidences.items():
        if not 0 < bar < 1:
            problems.append(
                Problem(
                    CONFIG_THRESHOLDS,
                    name,
                    f"{name} is {bar}: a confidence bar must lie strictly between 0 and 1.",
                )
            )
        elif threshold is not None and bar < threshold:
            problems.append(
                Problem(
                    CONFIG_THRESHOLDS,
                    f"{where}: FallbackClassifier threshold (line {_line(fallback, 'threshold')}) and {name}",
                    f"{name} = {bar} is below the FallbackClassifier threshold {threshold}: a message that "
                    "unsure already becomes nlu_fallback, so the bar never applies. Raise the bar to at "
                    "least the threshold, or lower the threshold.",
                )
            )
    return problems


# --- rasa data validate ----------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PY_WARNING = re.compile(r"^\S+\.py:\d+: (\w+): (.*)$")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\w+)\s+(\S+)\s+-\s+(.*)$")
#: Warnings Rasa prints on a passing project too: they never make it fail.
_NEVER_FAILING = (
    "is not used in any story or rule",
    "is listed in the domain file, but is not found in the NLU training data",
)
_FILE_IN_MESSAGE = re.compile(r"'([^']+\.ya?ml)'")


def parse_rasa_output(output: str, returncode: int, project_name: str = "rasa_project") -> list[Problem]:
    """The warnings and errors that made ``rasa data validate --fail-on-warnings`` fail."""
    if returncode == 0:
        return []
    messages: list[list[str]] = []
    current: list[str] | None = None
    for raw in _ANSI.sub("", output).splitlines():
        line = raw.rstrip()
        warning = _PY_WARNING.match(line)
        log = _LOG_LINE.match(line)
        if warning:
            current = [warning.group(2)] if warning.group(1) == "UserWarning" else None
            if current is not None:
                messages.append(current)
        elif log:
            level = log.group(1)
            current = [log.group(3)] if level in ("WARNING", "ERROR", "CRITICAL") else None
            if current is not None:
                messages.append(current)
        elif current is not None and line.strip() and not line.strip().startswith("More info at"):
            if line.startswith("Processed story blocks") or "Project validation completed" in line:
                current = None
            else:
                current.append(line.strip())
    problems = []
    for parts in messages:
        text = " ".join(p for p in parts if p).strip()
        if not text or any(s in text for s in _NEVER_FAILING):
            continue
        found = _FILE_IN_MESSAGE.search(text)
        where = f"{project_name}/{found.group(1)}" if found else f"{project_name} (rasa data validate)"
        problems.append(Problem(RASA_DATA_VALIDATE, where, text))
    if not problems:
        tail = [ln.strip() for ln in _ANSI.sub("", output).splitlines() if ln.strip()][-3:]
        problems.append(
            Problem(
                RASA_DATA_VALIDATE,
                f"{project_name} (rasa data validate)",
                f"rasa data validate failed (exit {returncode}): " + " / ".join(tail),
            )
        )
    return problems


def default_rasa_bin() -> Path:
    return Path(sys.executable).parent / "rasa"


def check_rasa_data_validate(
    project_dir: Path, *, rasa_bin: Path | None = None, timeout: float = 900
) -> list[Problem]:
    """``rasa data validate --fail-on-warnings`` in the project directory (``make rasa-validate``)."""
    root = Path(project_dir).resolve()
    rasa = Path(rasa_bin) if rasa_bin else default_rasa_bin()
    where = f"{root.name} (rasa data validate)"
    if not rasa.exists():
        return [
            Problem(
                RASA_DATA_VALIDATE,
                where,
                f"{rasa} not found: install the project (make install) or use --no-rasa.",
            )
        ]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        str(rasa),
        "data",
        "validate",
        "--fail-on-warnings",
        "--data",
        "data",
        "--domain",
        "domain.yml",
    ]
    command += ["--config", "config.yml"]
    try:
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return [Problem(RASA_DATA_VALIDATE, where, f"rasa data validate took longer than {timeout:.0f} s.")]
    return parse_rasa_output(done.stdout + "\n" + done.stderr, done.returncode, root.name)


# --- all together ------------------------------------------------------------------------------------

#: The checks in the order they run (the first only with run_rasa).
CHECKS = (
    RASA_DATA_VALIDATE,
    RESPONSE_LANGUAGES,
    EMAIL_VARIANT,
    DEBT_BEFORE_VERIFICATION,
    EXAMPLES_PER_LANGUAGE,
    EXAMPLE_UNDER_TWO_INTENTS,
    REVIEW_FILE,
    CONFIG_THRESHOLDS,
)


def validate(
    project_dir: Path,
    *,
    min_examples: int = 10,
    run_rasa: bool = True,
    rasa_bin: Path | None = None,
    progress: Callable[[str, int], None] | None = None,
    review_file: Path | None = None,
) -> list[Problem]:
    """Run every check on the project; ``progress(check, problems)`` after each. ``review_file``:
    the NLU inbox's (``ops.review_file``; by default ``data/nlu/review.yml`` in the project)."""
    problems: list[Problem] = []

    def ran(check: str, found: list[Problem]) -> None:
        problems.extend(found)
        if progress:
            progress(check, len(found))

    try:
        project = load_project(Path(project_dir))
    except ProjectError as e:
        ran(PROJECT_FILES, [Problem(PROJECT_FILES, str(project_dir), f"cannot read the project: {e}")])
        return problems
    review_path = Path(review_file) if review_file is not None else project.root / DEFAULT_REVIEW_FILE
    review_where = _review_where(project, review_path)
    own: dict[str, Callable[[], list[Problem]]] = {
        RESPONSE_LANGUAGES: lambda: check_response_languages(project),
        EMAIL_VARIANT: lambda: check_email_variant(project),
        DEBT_BEFORE_VERIFICATION: lambda: check_debt_before_verification(project),
        EXAMPLES_PER_LANGUAGE: lambda: check_examples_per_language(project, min_examples=min_examples),
        EXAMPLE_UNDER_TWO_INTENTS: lambda: check_example_under_two_intents(
            project, review_where=review_where
        ),
        REVIEW_FILE: lambda: check_review_file(project, review_file),
        CONFIG_THRESHOLDS: lambda: check_config_thresholds(project),
    }
    if run_rasa:
        ran(RASA_DATA_VALIDATE, check_rasa_data_validate(Path(project_dir), rasa_bin=rasa_bin))
    for check, run in own.items():
        ran(check, run())
    return problems


def checks_run(run_rasa: bool = True) -> tuple[str, ...]:
    return CHECKS if run_rasa else CHECKS[1:]


def format_report(problems: Sequence[Problem], checks: Sequence[str] | None = None) -> str:
    """A table of the checks with their counts, then each problem under its check."""
    names = list(checks if checks is not None else CHECKS)
    names += [p.check for p in problems if p.check not in names]
    names = list(dict.fromkeys(names))
    if not problems:
        return f"all {len(names)} checks passed"
    by_check: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        by_check[p.check].append(p)
    width = max(len(n) for n in names)
    lines = [f"{'check':<{width}}  problems", f"{'-' * width}  --------"]
    lines += [f"{n:<{width}}  {len(by_check[n]):>8}" for n in names]
    lines.append(f"{'total':<{width}}  {len(problems):>8}")
    for n in names:
        if by_check[n]:
            lines += ["", f"{n} ({len(by_check[n])}):"]
            for p in by_check[n]:
                lines += [f"  - {p.where}", f"    {p.message}"]
    return "\n".join(lines)


def _default_project() -> Path:
    here = Path("rasa_project")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "rasa_project"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.ops.validate",
        description="rasa data validate plus the product's checks of the Rasa project (responses in both "
        "languages, nothing about the debt before verification, NLU examples, config thresholds).",
    )
    parser.add_argument("--project", type=Path, default=None, help="the Rasa project (default: rasa_project)")
    parser.add_argument(
        "--min-examples", type=int, default=10, help="examples each intent needs per language (default 10)"
    )
    parser.add_argument("--no-rasa", action="store_true", help="skip rasa data validate (about 20 s)")
    parser.add_argument(
        "--review-file",
        type=Path,
        default=None,
        help="the NLU inbox's review file (ops.review_file; default: data/nlu/review.yml in the project)",
    )
    args = parser.parse_args(argv)
    project = args.project or _default_project()
    run_rasa = not args.no_rasa

    def progress(check: str, found: int) -> None:
        print(
            f"validate: {check}: {'ok' if not found else f'{found} problem(s)'}", file=sys.stderr, flush=True
        )

    if run_rasa:
        print(f"validate: {RASA_DATA_VALIDATE}: running rasa data validate...", file=sys.stderr, flush=True)
    problems = validate(
        project,
        min_examples=args.min_examples,
        run_rasa=run_rasa,
        progress=progress,
        review_file=args.review_file,
    )
    print(format_report(problems, checks_run(run_rasa)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
