"""Reading model replies: the one place where free text becomes an answer.

Lenient in what it reads, honest in what it returns. A reply is first narrowed to its answer:
text after the last ``</think>``, then the last non-empty ``<answer>…</answer>``, then the last
``\\boxed{…}`` inside that. Within the answer, statements are tried from the most answer-like
to the least: what follows each cue ("the answer is", "Answer:", "option", "I choose", "so",
"therefore" …), the last cue first, then each sentence, the last first. The first statement
that names an answer decides, so "I first thought A … so the answer is B" reads B. A statement
that names two different answers ("A or B", "yes or no", "3 to 4") makes the reply
unparsable rather than a guess.

Unparsable replies give ``Parsed(value=None, error=<one line>)``; nothing here raises on model
text (only on an unknown answer type, a caller's mistake). ``strict`` says the reply after any
``</think>`` (or its ``<answer>`` content, the form the evaluation prompt asks for) is exactly
the requested form, up to surrounding whitespace: a bare capital option letter, "yes"/"no" or
one of META_ACTIONS (in any letter case), a bare number, a JSON list of four numbers (box) or
of six [x, y] pairs (waypoints).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from roadthink.eval.result import Parsed
from roadthink.tasks.planning import DIRECTIONS, META_ACTIONS, SPEEDS
from roadthink.tasks.sample import AnswerType, Fact

WAYPOINTS = 6  # positions at 0.5 s steps up to 3 s
QWEN_GRID = 1000  # Qwen2-VL writes <|box_start|>(x1,y1),(x2,y2)<|box_end|> on a 0–1000 grid over the image

_Reader = Callable[[str, bool], Parsed | None]  # (statement, follows a cue) -> answer, conflict, or nothing there

_NUM = r"[-+]?\d+(?:\.\d+)?"
_OPEN = r"[\s(\[{*_\"'`]*+"  # markup before a letter or word: brackets, bold, quotes
_CLOSE = r"[)\]}*_\"'`]*+"
_JOIN = r"\s*+(?:[,/&]\s*+(?:(?:or|and)\b\s*+)?|(?:or|and)\b\s*+)"  # "A or B", "A/B", "A, B", "yes and no"
_LETTER = rf"{_OPEN}(?<![A-Za-z\d])[A-Za-z](?![A-Za-z\d]){_CLOSE}"
_LETTERS = re.compile(rf"{_LETTER}(?:{_JOIN}(?:option\s++)?{_LETTER})*+", re.I)
_TRAILING_LETTERS = re.compile(rf"{_LETTERS.pattern}[.!]?\s*\Z", re.I)
_TRAILING_SPAN = 40  # characters at a statement's end searched for "so it's B"
_LONE_LETTER = re.compile(r"(?<![A-Za-z\d])[A-Za-z](?![A-Za-z\d])")
_CUE = re.compile(
    r"\banswer\b(?:\s+(?:is|was|would be|should be|must be|will be))?\s*+[:=]?"
    r"|\b(?:option|choice)\b(?:\s+(?:is|was|would be|should be|must be|will be))?"
    r"|\b(?:choose|chose|pick|select|go with|therefore|thus|hence|so)\b[,:]?",
    re.I,
)
_CUES = 50  # the last cues tried: a reply stuck in a loop repeats "the answer is" thousands of times
_TAIL = 300  # characters after a cue at most: an answer statement is short
_END = re.compile(r"(?<!\b[A-Z])[.!?](?=\s|\Z)|\n")  # a sentence ends, but not at "B." (an option letter)
_SPACE = re.compile(r"\s*")
_OPTION = re.compile(r"\s*([A-Z])[.):]\s*(.*)", re.S)
_LISTED = re.compile(r"^[\s*#>-]*\(?([A-Z])[.):]", re.M)  # "A. left" at a line start: the reply lists the options

_POLARITY = {"yes": "yes", "yeah": "yes", "yep": "yes", "true": "yes", "no": "no", "nope": "no", "false": "no"}
# "no" before a noun is a determiner ("no other cars"), not an answer
_POLARITY_RE = re.compile(
    r"\b(?:yes|yeah|yep|true|nope|false)\b|\bno\b(?!\s+(?!(?:it|there|they|that|this|i|we|not)\b)[a-z])", re.I
)

_NUMBER_WORDS = {
    word: i
    for i, word in enumerate(
        (
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        )
    )
} | {"none": 0}
_NUMBER_RE = re.compile(rf"(?<![\w.]){_NUM}|\b(?:{'|'.join(_NUMBER_WORDS)})\b", re.I)
_RANGE = r"\s*+(?:-|–|\bto\b|\bor\b|\band\b|/|,)\s*+"  # "3-4", "3 to 4", "3 or 4"

_ACTION = re.compile(rf"\b({'|'.join(SPEEDS)})\s*,\s*({'|'.join(DIRECTIONS)})\b", re.I)
_SPEED_TERMS = {
    "accelerate": r"accelerat\w*|speed(?:s|ing)? up|(?:pick|gain)\w* up speed|gain\w* speed"
    r"|increas\w* (?:the |its )?speed|go\w* faster",
    "keep": r"keep(?:s|ing)?(?=\s*+(?:,|\Z)|\s+(?:going|driving|moving|cruising|straight|left|right|the same|same"
    r"|current|constant|steady|its|speed|velocity|pace)\b)|maintain\w*|(?:constant|same|steady|current) speed|cruis\w*"
    r"|continu\w* at",
    "decelerate": r"decelerat\w*|slow\w*|brak\w*|reduc\w* (?:the |its )?speed|eas\w* off",
    "stop": r"stop\w*|halt\w*|stand\s*still|standstill",
}
_DIRECTION_TERMS = {
    "straight": r"straight|forward|(?:keep\w*|stay\w*) in (?:the |its |our |my )?lane|lane[- ]keeping",
    "left": r"left",
    "right": r"right",
}

_FOUR = re.compile(rf"[\[(]\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*[\])]")
_CORNERS = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_QWEN_BOX = re.compile(rf"<\|box_start\|>\s*{_CORNERS.pattern}\s*<\|box_end\|>")
_BRACED = re.compile(r"\{[^{}]*\}")
_BOX_KEY = re.compile(rf"\b([xy][12])[\"']?\s*[:=]\s*({_NUM})")
_BOX_KEYS = ("x1", "y1", "x2", "y2")
_PAIR = re.compile(
    rf"[\[(]\s*({_NUM})\s*,\s*({_NUM})\s*[\])]|\{{\s*[\"']?x[\"']?\s*:\s*({_NUM})\s*,\s*[\"']?y[\"']?\s*:\s*({_NUM})\s*\}}"
)
_PAIR_GAP = re.compile(r"[\s,;:.\-*>→\d()\[\]{}=ts]{0,30}")  # between points of one list: commas, "2.", "t=1.0 s:"

_FACTS_TAG = re.compile(r"<facts>(.*?)</facts>", re.S | re.I)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def parse_answer(
    text: str,
    answer_type: AnswerType | str,
    choices: list[str] | None = None,
    image_size: tuple[int, int] | None = None,
) -> Parsed:
    """Read a model's reply as an answer of ``answer_type``.

    ``choices`` are the options as shown ("A. left"); a choice reply may name the letter or an
    option's text, as long as exactly one option is meant. ``image_size`` (width, height in
    pixels) rescales Qwen2-VL's ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` boxes from their
    0–1000 grid to pixels (without it they are returned on the grid); boxes written any other
    way are taken as pixels. Those tokens only reach here if the reply was decoded with its
    special tokens kept."""
    kind = AnswerType(answer_type)
    if kind is AnswerType.CHOICE and not choices:  # a defective sample: recorded against it, the run goes on
        return Parsed(error="choice question without choices")
    source = _tagged(re.split(r"</think>", text, flags=re.I)[-1])
    region = _unboxed(source)
    if not region:
        return Parsed(error="empty reply")
    match kind:
        case AnswerType.CHOICE:
            parsed = _parse_choice(region, _options(choices or []))
        case AnswerType.YES_NO:
            parsed = _parse_statements(region, _read_yes_no, "no yes or no found")
        case AnswerType.NUMBER:
            parsed = _parse_statements(region, _read_number, "no number found")
        case AnswerType.META_ACTION:
            parsed = _parse_statements(region, _read_meta_action, f"no speed action ({', '.join(SPEEDS)}) found")
        case AnswerType.BOX:
            parsed = _parse_box(region, image_size)
        case AnswerType.WAYPOINTS:
            parsed = _parse_waypoints(region)
        case AnswerType.TEXT:
            parsed = Parsed(value=region)
    if parsed.value is not None:
        parsed.strict = _STRICT[kind](source)
    return parsed


# --- narrowing a reply to its answer ---------------------------------------------------------


def _tagged(text: str) -> str:
    """The last non-empty <answer> content (an unclosed last tag runs to the end), else the text."""
    answers = [a.strip() for a in re.findall(r"<answer>(.*?)(?:</answer>|\Z)", text, re.S | re.I) if a.strip()]
    return answers[-1] if answers else text.strip()


def _unboxed(text: str) -> str:
    """The content of the last \\boxed{…} (braces balanced, \\text{…} unwrapped), else the text."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return text
    depth = 0
    for end in range(start + len("\\boxed"), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    else:  # unbalanced: the reply was cut off inside the box
        end = len(text)
    inner = text[start + len("\\boxed{") : end]
    return re.sub(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}", r"\1", inner).strip()


def _statements(region: str, cued_only: bool = False) -> Iterator[tuple[str, bool]]:
    """Candidate answer statements, most answer-like first: the text after each cue (last cue
    first) up to the end of its sentence, then each sentence (last first)."""
    for cue in reversed(list(_CUE.finditer(region))[-_CUES:]):
        start = _SPACE.match(region, cue.end()).end()
        end = _END.search(region, start, start + _TAIL)
        yield region[start : end.start() if end else start + _TAIL], True
    if not cued_only:
        for sentence in reversed(_END.split(region)):
            if sentence.strip():
                yield sentence.strip(), False


def _parse_statements(region: str, read: _Reader, missing: str, cued_only: bool = False) -> Parsed:
    """The answer of the first statement that names one, or why none did."""
    found = next((p for s, cued in _statements(region, cued_only) if (p := read(s, cued))), None)
    return found or Parsed(error=missing)


def _one(values: Iterable[Any], what: str) -> Parsed | None:
    """One answer if all named values agree, a conflict if they do not, None if none was named."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        return Parsed(error=f"names more than one {what}: {', '.join(map(str, distinct))}")
    return Parsed(value=distinct[0]) if distinct else None


def _bare_prefix(s: str, at: int) -> bool:
    """Whether only markup precedes position ``at``: the statement starts with this word."""
    return re.fullmatch(_OPEN, s[:at]) is not None


# --- choice ----------------------------------------------------------------------------------


def _options(choices: list[str]) -> dict[str, str]:
    """Letter -> lower-case option text, from "A. left" (or by position, where unlettered)."""
    options = {}
    for i, choice in enumerate(choices):
        m = _OPTION.fullmatch(choice)
        letter, body = (m.group(1), m.group(2)) if m else (chr(ord("A") + i), choice)
        options[letter] = _plain(body).rstrip(".")
    return options


def _plain(s: str) -> str:
    """Lower case without markdown emphasis, with one kind of apostrophe and single spaces."""
    return " ".join(re.sub(r"[*_`]", "", s).replace("’", "'").lower().split())


def _parse_choice(region: str, options: dict[str, str]) -> Parsed:
    """A letter or an option's text; when the reply lists options line by line, only cued statements count."""
    listed = len(set(_LISTED.findall(region))) > 1
    return _parse_statements(
        region,
        lambda s, cued: _read_choice(s, cued, options),
        f"no option letter ({', '.join(options)}) or option text found",
        cued_only=listed,
    )


def _read_choice(s: str, cued: bool, options: dict[str, str]) -> Parsed | None:
    """The option letters the statement says, else the options its text names. A letter that is
    no option is an error only where it plainly stands as one ("E." with options A to D)."""
    for letters, marked in _said_letters(s, cued):
        unknown = [c for c in letters if c not in options]
        if not unknown:
            return _one(letters, "option")
        if marked:
            return Parsed(error=f"names option {unknown[0]}, not one of {', '.join(options)}")
    return _one(_named_options(s, options), "option")


def _said_letters(s: str, cued: bool) -> Iterator[tuple[list[str], bool]]:
    """(letters, plainly a letter) at the statement's start, then at its end ("so it's B").

    At the start "B." "(B) left" "**B**" "A or B" stand out as letters, "A car" does not; after a
    cue a capital does ("the answer is B because"). At the end only capitals count."""
    m = _LETTERS.match(s)
    if m:
        raw = _LONE_LETTER.findall(m.group())
        marked = bool(
            len(raw) > 1 or re.match(r"\s*(?:[.:;,!?]|\Z)", s[m.end() :]) or re.search(r"[)\]}*]$", m.group())
        )
        if marked or (cued and raw[0].isupper()):
            yield [c.upper() for c in raw], marked
    m = _TRAILING_LETTERS.search(s[-_TRAILING_SPAN:])
    if m and (raw := _LONE_LETTER.findall(m.group())) and all(c.isupper() for c in raw):
        yield raw, False


def _named_options(s: str, options: dict[str, str]) -> list[str]:
    """Letters of the options whose text the statement contains, in order; a text that is only
    part of a longer option's match ("left" in "the lane to the left") does not count."""
    text = _plain(s)
    spans = [
        (m.start(), m.end(), letter)
        for letter, body in options.items()
        if body
        for m in re.finditer(rf"(?<!\w){re.escape(body)}(?!\w)", text)
    ]
    return [
        letter
        for a, b, letter in sorted(spans)
        if not any(a2 <= a and b <= b2 and b2 - a2 > b - a for a2, b2, _ in spans)
    ]


# --- yes/no, numbers ---------------------------------------------------------------------------


def _read_yes_no(s: str, cued: bool) -> Parsed | None:
    """yes/yeah/yep/true or no/nope/false: True and False answer the question's proposition.
    After a cue or at the statement's start the first word decides ("No, it is not"), unless
    joined to another ("yes or no"); elsewhere all such words must agree."""
    words = list(_POLARITY_RE.finditer(s))
    if not words:
        return None
    if cued or _bare_prefix(s, words[0].start()):
        joined = re.match(rf"{_JOIN}(?:{_POLARITY_RE.pattern})", s[words[0].end() :], re.I)
        words = words[:2] if joined else words[:1]
    return _one((_POLARITY[w.group().lower()] for w in words), "answer")


def _number(token: str) -> int | float:
    """A number token's value, an int when integral ("3.0" -> 3)."""
    value = _NUMBER_WORDS.get(token.lower())
    if value is not None:
        return value
    x = float(token)
    return int(x) if x.is_integer() else x


def _read_number(s: str, cued: bool) -> Parsed | None:
    """After a cue the first number ("the answer is 3 cars") unless a range or alternative
    follows ("3 to 4"); elsewhere the statement must name one number only."""
    tokens = list(_NUMBER_RE.finditer(s))
    if cued and tokens:
        joined = re.match(rf"{_RANGE}(?:{_NUMBER_RE.pattern})", s[tokens[0].end() :], re.I)
        tokens = tokens[:2] if joined else tokens[:1]
    return _one((_number(t.group()) for t in tokens), "number")


# --- meta-actions ------------------------------------------------------------------------------


def _terms(s: str, vocabulary: dict[str, str]) -> list[str]:
    """The vocabulary's keys whose wording occurs in the statement."""
    return [key for key, pattern in vocabulary.items() if re.search(rf"\b(?:{pattern})", s, re.I)]


def _action(speed: str, direction: str) -> str:
    """A stop goes straight, as in the task's own answers."""
    return f"{speed}, {'straight' if speed == 'stop' else direction}"


def _read_meta_action(s: str, cued: bool) -> Parsed | None:
    """Written as in META_ACTIONS ("keep, straight"), or in free wording: a speed term must be there;
    slowing to a stop is a stop, and a stop goes straight (as in the task's own answers); with
    no direction term, straight (a turn or lane change is always named); conflicting terms
    are a conflict."""
    canonical = _ACTION.findall(s)
    if canonical:
        return _one((_action(v.lower(), d.lower()) for v, d in canonical), "action")
    speeds = _terms(s, _SPEED_TERMS)
    if "stop" in speeds:
        speeds = [v for v in speeds if v != "decelerate"]
    if not speeds:
        return None
    directions = ["straight"] if speeds == ["stop"] else _terms(s, _DIRECTION_TERMS) or ["straight"]
    conflict = next((_one(v, w) for v, w in ((speeds, "speed action"), (directions, "direction")) if len(v) > 1), None)
    return conflict or Parsed(value=f"{speeds[0]}, {directions[0]}")


# --- boxes and waypoints -----------------------------------------------------------------------


def _box_candidates(region: str) -> Iterator[tuple[int, list[float], bool]]:
    """(end position, x1 y1 x2 y2, on Qwen's grid) of every box written in the reply."""
    for m in _QWEN_BOX.finditer(region):
        yield m.end(), [float(g) for g in m.groups()], True
    for pattern in (_FOUR, _CORNERS):
        for m in pattern.finditer(region):
            yield m.end(), [float(g) for g in m.groups()], False
    for m in _BRACED.finditer(region):
        keys = dict(_BOX_KEY.findall(m.group()))
        if all(k in keys for k in _BOX_KEYS):
            yield m.end(), [float(keys[k]) for k in _BOX_KEYS], False


def _parse_box(region: str, image_size: tuple[int, int] | None) -> Parsed:
    """The last box in the reply, as [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2."""
    candidates = list(_box_candidates(region))
    if not candidates:
        return Parsed(error="no box [x1, y1, x2, y2] found")
    _, (x1, y1, x2, y2), on_grid = max(candidates, key=lambda c: c[0])
    if on_grid and image_size:
        sx, sy = image_size[0] / QWEN_GRID, image_size[1] / QWEN_GRID
        x1, y1, x2, y2 = x1 * sx, y1 * sy, x2 * sx, y2 * sy
    return Parsed(value=[min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])


def _point_lists(region: str) -> list[list[list[float]]]:
    """Runs of consecutive [x, y] / (x, y) / {"x":, "y":} points, split where words come between."""
    runs: list[list[list[float]]] = []
    end = 0
    for m in _PAIR.finditer(region):
        point = [float(g) for g in m.groups() if g is not None]
        if runs and _PAIR_GAP.fullmatch(region[end : m.start()]):
            runs[-1].append(point)
        else:
            runs.append([point])
        end = m.end()
    return runs


def _parse_waypoints(region: str) -> Parsed:
    """The last list of exactly six points (0.5 s to 3 s); otherwise say how many the last list had."""
    runs = _point_lists(region)
    complete = [r for r in runs if len(r) == WAYPOINTS]
    if complete:
        return Parsed(value=complete[-1])
    if runs:
        return Parsed(error=f"expected {WAYPOINTS} waypoints (0.5 s to 3 s), got {len(runs[-1])}")
    return Parsed(error=f"no waypoints found (a list of {WAYPOINTS} [x, y] pairs)")


# --- strict form -------------------------------------------------------------------------------


def _load(text: str) -> Any:
    """JSON, or a Python literal (single quotes, True/None); None when it is neither."""
    for loads in (json.loads, ast.literal_eval):
        try:
            return loads(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def _numbers(value: Any, n: int) -> bool:
    """Whether ``value`` is a list of ``n`` finite numbers (booleans are not numbers)."""
    return (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in value)
    )


def _strict_waypoints(s: str) -> bool:
    points = _load(s)
    return isinstance(points, list) and len(points) == WAYPOINTS and all(_numbers(p, 2) for p in points)


_STRICT: dict[AnswerType, Callable[[str], bool]] = {
    AnswerType.CHOICE: lambda s: re.fullmatch(r"[A-Z]", s) is not None,
    AnswerType.YES_NO: lambda s: s.lower() in ("yes", "no"),
    AnswerType.NUMBER: lambda s: re.fullmatch(_NUM, s) is not None,
    AnswerType.META_ACTION: lambda s: s.lower() in META_ACTIONS,
    AnswerType.BOX: lambda s: _numbers(_load(s), 4),
    AnswerType.WAYPOINTS: _strict_waypoints,
    AnswerType.TEXT: lambda s: True,
}


# --- stated facts ------------------------------------------------------------------------------


class StatedFacts(list[Fact]):
    """The facts a reply states, with ``skipped``: entries (or whole <facts> blocks) it wrote
    that could not be read as facts, so the reasoning score can count them as unverifiable."""

    def __init__(self, facts: Iterable[Fact] = (), skipped: int = 0) -> None:
        super().__init__(facts)
        self.skipped = skipped


def _fact(entry: Any) -> Fact | None:
    """An entry as a Fact: an object with a string "type"; None for anything else."""
    if not (isinstance(entry, dict) and all(isinstance(k, str) for k in entry) and isinstance(entry.get("type"), str)):
        return None
    try:
        return Fact.model_validate(entry)
    except ValidationError:
        return None


def _typed(value: Any) -> bool:
    """Whether a ```json block holds facts: an object, or a list with an object, with a "type"."""
    entries = value if isinstance(value, list) else [value]
    return any(isinstance(e, dict) and "type" in e for e in entries)


def parse_facts(text: str) -> StatedFacts:
    """The facts stated in a reasoning trace: JSON lists (or single objects) inside
    <facts>…</facts>, or, where there are no such tags, in ```json blocks whose objects have a
    "type". Malformed entries are skipped and counted in ``skipped``; an unreadable <facts>
    block counts as one."""
    tagged = _FACTS_TAG.findall(text)
    if tagged:
        blocks = [_load(m.group(1) if (m := _FENCE.search(t)) else t.strip()) for t in tagged if t.strip()]
    else:
        blocks = [v for block in _FENCE.findall(text) if _typed(v := _load(block.strip()))]
    facts: list[Fact] = []
    skipped = 0
    for block in blocks:
        entries = block if isinstance(block, list) else [block]
        read = [_fact(e) for e in entries]
        facts += [f for f in read if f is not None]
        skipped += sum(f is None for f in read)
    return StatedFacts(facts, skipped)
