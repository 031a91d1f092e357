"""Opt-out in words: does the person ask us to stop contacting them, or to stop something else?

"Stop" is not always an opt-out. "Can you stop the late fees", "cancel the direct debit",
"quiten los recargos" ask for something else, and opting those people out would silence them
for good while they ask for help. :func:`read_opt_out` reads what the stop-like words of a
message are aimed at (English and Spanish; any case, accents or not, punctuation or not,
common misspellings); :func:`decide` combines that reading with the intent classifier's verdict.

Pure functions, standard library only: the Rasa action server imports this module. SMS
keywords (a message of just STOP, BAJA...) never get here: the gateway handles them first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum


class Reading(str, Enum):
    """What the stop-like words of a message are aimed at."""

    CLEAR = "clear"  # clearly asks to stop being contacted (here or at all)
    ELSEWHERE = "elsewhere"  # stop-like words aimed at something else (fees, interest, direct debit...)
    UNSURE = "unsure"  # stop-like words, but what should stop is not clear ("stop", "stop it", "enough")
    NONE = "none"  # no stop-like words at all


@dataclass(frozen=True)
class OptOutReading:
    reading: Reading
    #: For ELSEWHERE: what should stop, one of :data:`TARGETS`.
    target: str | None = None


class OptOutDecision(str, Enum):
    OPT_OUT = "opt_out"  # opt out now, one confirmation
    ASK = "ask"  # one clarifying question, then carry on with what the person asked
    NOT_OPT_OUT = "not_opt_out"


#: Below this opt_out confidence the bot asks instead of opting out.
#:
#: Calibrated on the training data only, never on a held-out set, with
#: ``python -m bot.ops.evaluate --calibrate-opt-out``: every training message is classified by the
#: intent model (dialogue/nlu.py, config.yml's settings and FallbackClassifier) trained on the
#: other four of five folds, and for each threshold the table gives how often the classifier
#: alone is right when it says opt_out above it, how many messages of other intents the
#: product would opt out (those that also read CLEAR), and the share of the clear opt-outs it
#: acts on. CONFIDENT is the lowest threshold where the classifier alone is right at least 90 %
#: of the time and no other message is opted out; lowest, because every step above it only
#: turns opt-outs people asked for into a question. On the 3,031 training messages (2026-12):
#: 0.45, out-of-fold precision 0.983, no false opt-out (at 0.40 one, the already_paid
#: "YA PAGUÉ, NO ME ESCRIBAN POR ESO", scored 0.40-0.45), 85 % of the clear opt-outs acted on
#: out of fold (the others get the one question). Re-run it when the NLU data change much.
CONFIDENT = 0.45

#: Stable names of what, other than contact, someone may want stopped ("hours": contact at
#: some times only, "stop texting me at work", "no me escriban antes de las 9").
TARGETS = ("fees", "interest", "direct_debit", "plan", "letters", "debt", "calls", "hours")


def normalize(text: str) -> str:
    """Lower case, no accents, no apostrophes, other punctuation and emoji as spaces."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub("['`\u2018\u2019\u00b4]", "", text)  # don't -> dont, whatever the apostrophe
    text = re.sub(r"[\W_]+", " ", text)
    text = re.sub(r"(?<!\S)e (mails?)(?!\S)", r"e\1", text)  # e-mail -> email
    return " ".join(text.split())


# --- what stop-like words can be aimed at --------------------------------------------------
#: Two- and three-word names, turned into one word before the words are looked up.
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"direct debits?|standing orders?|auto pay\w*|automatic (payments?|debits?)|"
     r"recurring (payments?|charges?)|taking (money|payments?|the money)|"
     r"cargos? automaticos?|cobros? automaticos?|debitos? automaticos?|pagos? automaticos?|"
     r"pagos? domiciliados?", "directdebit"),
    (r"correo (postal|fisico|en papel|ordinario)|paper (mail|letters?)|cartas? (en|de) papel", "letters"),
    (r"base de datos|mailing list|lista de (contactos|envios?|correos?)|call list", "contactlist"),
    (r"late fees?|late charges?|fees? and charges", "fees"),
    (r"in writing|por escrito", "inwriting"),
    (r"whats ?app|what s app|wats ?app|guasap", "whatsapp"),
    (r"write to (me|us)|writing to (me|us)|write me|writing me", "contactlist"),
    (r"interest rates?|tasa de interes", "interest"),
    (r"payment plan|plan de pagos?", "plan"),
)  # fmt: skip
#: Words about being contacted (strong: they say it by themselves).
_CONTACT = (
    r"contact\w*|kontact\w*|text\w*|txt\w*|message\w*|mes+[ae]g\w*|msg\w*|sms|emails?|emailing|"
    r"mails|notifications?|notifs?|reminders?|alerts?|spam\w*|whatsapps?|wasaps?|"
    r"har+as+\w*|hound\w*|pester\w*|bother\w*|chas\w*|stalk\w*|ping|pinging|write|writing|"
    r"list|lists|contactlist|communications?|correspondence|"
    r"mensa[jg]\w*|msj\w*|textos?|correos?|escri[bv]\w*|contact\w*|molest\w*|acos\w*|fastidi\w*|"
    r"notificaciones|recordatorios|avisos|suscripcion\w*|subscriptions?|listas?|"
    r"correspondencia|comunicacion\w*|busquen|buscarme|buscar"
)
#: Named targets other than contact (a noun or a verb that names one).
_TARGET_WORDS: tuple[tuple[str, str], ...] = (
    ("direct_debit", r"directdebit|dd|auto ?pay\w*|debits?|withdraw\w*|domicilia\w*|descont\w*|descuent\w*"),
    ("interest", r"interest|interests|apr|intereses|interes"),
    ("fees", r"fees?|charges|penalt\w*|surcharges?|recargos?|comision\w*|cargos?|multas?|"
     r"penalizacion\w*|gastos?"),
    ("letters", r"letters?|post|mail|paperwork|statements?|cartas?|papel\w*"),
    ("calls", r"calls?|calling|ring|ringing|phoning|voicemails?|llamadas?|llamar\w*|llamen|"
     r"llames|llame|llamando|marcar\w*|marquen|telefonazos"),
    ("plan", r"plan|plans|arrangements?|instal+ments?|payments?|paying|pay|convenio|acuerdo|"
     r"cuotas?|pagos?|pagar\w*|mensualidad\w*|abonos?|plazos?"),
    ("debt", r"debts?|borrow\w*|loans?|credit\w*|overdraft|collections?|deudas?|endeud\w*|prestamos?|"
     r"cobranzas?|pedir prestado"),
)  # fmt: skip
#: Verbs that name a target only weakly ("stop charging me interest" is about interest).
_TARGET_VERBS: tuple[tuple[str, str], ...] = (("fees", r"charg\w*|cobr\w*"),)
#: Weak contact: "stop sending me this", "remove me"; anything more specific wins.
_CONTACT_WEAK = (
    r"send\w*|mand\w*|envi\w*|me|nos|us|cosas|stuff|number|numero|phone|details|data|datos|info|"
    r"database|system|systems|records|registros|sistema|conmigo"
)

_STRONG = re.compile(rf"(?:{_CONTACT})")
_WEAK = re.compile(rf"(?:{_CONTACT_WEAK})")
_TARGETS_RE = tuple((name, re.compile(rf"(?:{pattern})")) for name, pattern in _TARGET_WORDS)
_VERBS_RE = tuple((name, re.compile(rf"(?:{pattern})")) for name, pattern in _TARGET_VERBS)
_PHRASES_RE = tuple((re.compile(rf"(?<!\S)(?:{pattern})(?!\S)"), word) for pattern, word in _PHRASES)

_DAYS = r"(mon|tues|wednes|thurs|fri|satur|sun)days?|lunes|martes|miercoles|jueves|viernes|sabados?|domingos?"
#: Contact at some times only: a preference for contact hours, not an opt-out.
_HOURS = re.compile(
    r"(?<!\S)(?:"
    r"(at|during|while (im|i am)( at)?) work|while (im|i am) working|(during|in) (work|working|office) hours|"
    r"(before|after|until|till|til|past) (\d+|noon|lunch|midnight|work|dark|\w+ ?(am|pm))|"
    r"(in|during) the (mornings?|evenings?|afternoons?|night|day)|at night|late at night|so (early|late)|"
    rf"(on|every) ({_DAYS})|on (the )?weekends?|"
    r"cuando (estoy|este|ando) (trabajando|en el trabajo|en la chamba)|en (el|mi) (trabajo|chamba)|"
    r"al trabajo|(antes|despues) de (las \d+|la \d+|mediodia|las \w+)|(en|por) la (manana|noche|tarde)s?|"
    r"en las (mananas|noches|tardes)|de (noche|madrugada)|tan (temprano|tarde)|"
    rf"(los|el) ({_DAYS})|(en )?fines? de semana|(horario|horas) (de trabajo|laboral\w*)"
    r")(?!\S)"
)
#: After these words what follows is another sentence, about something else.
_BOUNDARY = frozenset(
    [
        "but",
        "because",
        "cause",
        "cuz",
        "since",
        "so",
        "although",
        "though",
        "pero",
        "porque",
        "aunque",
        "entonces",
    ]
)
#: A pronoun right after the stop-like word ("stop it", "para eso"): what it means is not said.
_VAGUE = frozenset(["it", "that", "eso", "esto"])
#: Words that carry nothing about what should stop.
_FILLERS = frozenset(
    {"please", "pls", "plz", "now", "already", "just", "ok", "okay", "right", "away", "asap", "immediately"}
    | {"ya", "porfa", "porfavor", "por", "favor", "oye", "ahora", "mismo", "and", "y", "so", "then", "mejor"}
)
#: Words that join two things to stop ("calls and texts", "llamadas ni mensajes").
_AND = frozenset(["and", "or", "nor", "&", "y", "e", "o", "ni"])
#: Small words between a thing named and an "and" ("calling me and texting me").
_LINKED = frozenset(
    [
        "me",
        "us",
        "the",
        "my",
        "your",
        "all",
        "any",
        "a",
        "an",
        "nos",
        "los",
        "las",
        "el",
        "la",
        "mis",
        "sus",
        "de",
        "del",
    ]
)
#: How many words after a stop-like word can name what it is aimed at.
_WINDOW = 7


def _what(word: str) -> tuple[int, str] | None:
    """What one word names, most specific first: (0, contact or a target), (1, a target named
    by a verb: "charging"), (3, weak contact: "me", "sending")."""
    if _STRONG.fullmatch(word):
        return (0, "contact")
    for name, pattern in _TARGETS_RE:
        if pattern.fullmatch(word):
            return (0, name)
    for name, pattern in _VERBS_RE:
        if pattern.fullmatch(word):
            return (1, name)
    if _WEAK.fullmatch(word):
        return (3, "contact")
    return None


def _aimed_at(words: list[str]) -> str | None:
    """What a run of words (those after a stop-like word) names: "contact", a target or None."""
    if words and words[0] in _VAGUE:
        if words[1:2] not in (["with"], ["con"]):
            return None  # "stop it", "para eso": what is not said
        words = words[2:]  # "stop it with the texts"
    window: list[str] = []
    for word in words:
        if word in _BOUNDARY or len(window) >= _WINDOW:
            break
        window.append(word)
    joined = " ".join(window)
    for pattern, replacement in _PHRASES_RE:
        joined = pattern.sub(replacement, joined)
    words = joined.split()
    kinds = [_what(word) for word in words]
    # The first thing named, with whatever is joined to it by "and"/"y"/"ni" ("stop calling and
    # texting me"): contact if any of those is contact. Not what comes later in another phrase
    # ("stop sending me letters, email is fine").
    group: list[str] = []
    position = 0
    while position < len(words):
        kind = kinds[position]
        if kind is not None and kind[0] == 0:
            group.append(kind[1])
            position += 1
            while position < len(words) and (words[position] in _LINKED or _weak(kinds[position])):
                position += 1
            if position < len(words) and words[position] in _AND:
                position += 1
                while position < len(words) and (words[position] in _LINKED or _weak(kinds[position])):
                    position += 1
                continue
            break
        if group:
            break
        position += 1
    if group:
        return _CONTACT_DEFAULT if _CONTACT_DEFAULT in group else group[0]
    weaker = sorted((kind[0], index, kind[1]) for index, kind in enumerate(kinds) if kind is not None)
    return weaker[0][2] if weaker else None


def _weak(kind: tuple[int, str] | None) -> bool:
    return kind is not None and kind[0] == 3


# --- the stop-like words ---------------------------------------------------------------------
_CONTACT_DEFAULT = "contact"
_UNSURE = "unsure"


@dataclass(frozen=True)
class _Cue:
    pattern: re.Pattern[str]
    #: What the words mean when they name nothing: contact ("unsubscribe", "leave me alone"),
    #: unsure ("stop", "basta"), or None ("remove", "no more": not stop-like on their own).
    default: str | None
    #: Only at the start of the message (or after a filler): "para los intereses" but not
    #: "un plan para pagar", "alto" but not "un interés muy alto".
    opener_only: bool = False
    #: Stop-like only when aimed at contact: "i don't want any more texts", "no quiero
    #: mensajes"; "i don't want to pay", "no quiero pagar" have no stop-like words.
    contact_only: bool = False


def _cue(pattern: str, default: str | None, *, opener_only: bool = False, contact_only: bool = False) -> _Cue:
    return _Cue(re.compile(rf"(?<!\S)(?:{pattern})(?!\S)"), default, opener_only, contact_only)


_CUES: tuple[_Cue, ...] = (
    # About contact whatever follows (unless something more specific is named).
    _cue(r"un ?sub?s?c?ri\w*|unsub\w*|opt(ing|ed)? ?out|opt (me|us) out|optout|de ?s?suscri\w*|"
         r"leave (me|us) (alone?\w*|be|in peace|the \w+ alone?\w*)|lose (my|this) number|"
         r"forget (my|this) number|forget about me|cease and desist|"
         r"(dar|darme|darse|denme|deme|dame|darnos|den) de baja|"
         r"(me|nos) (quiero |quisiera )?(doy|dare|dar) de baja|"
         r"quiero (la|mi) baja|baja de (la lista|los mensajes|mensajes|la suscripcion)|"
         r"(dejen|deja|deje|dejame|dejenme|dejeme|dejanos|dejennos|dejame) (en paz|tranquil\w*)|"
         r"no (quiero|deseo|quisiera) saber (nada|mas)|"
         r"no (quiero|deseo|quisiera) que (me|nos) (sigan |vuelvan a )?"
         r"(contact|escri[bv]|busqu|molest|mand|envi)\w*|"
         r"(no longer|dont|do not|not|never) (wish|want) to "
         r"(be contacted|receive|hear|get|be messaged|be texted)|"
         r"no (quiero|deseo|quisiera) (recibir|ser contactad\w*)",
         _CONTACT_DEFAULT),
    _cue(r"go away|get lost|(piss|f|fuck|sod|bugger|back) off|let me be", _CONTACT_DEFAULT, opener_only=True),
    # Stop-like whatever follows; alone, unclear.
    _cue(r"stop+|stahp|stap|sotp|stpo|stopping|quit|quitting|cease|halt|cancel+|cancel+ing|"
         r"cese|cesen|cesar|cesa|"
         r"knock it off|cut it out|enough is enough|thats enough|that is enough|enough already|"
         r"para de|paren|pare|parar|parale|parenle|parele|parenla|detener|deten|detente|detenga|"
         r"detengan|detenganse|basta|ya estuvo|ya chole|cancelar|cancela|cancele|cancelen|"
         r"cancelame|cancelenme|suspend|suspendan|suspender|suspenda|suspende",
         _UNSURE),
    _cue(r"enough|alto", _UNSURE, opener_only=True),
    _cue(r"para", None, opener_only=True),  # "para los intereses"; "para ya" is handled below
    # Negated contact: "don't text me", "no me escriban", "never contact me again".
    _cue(r"(dont|do not|never|no longer) (want (you|u|anyone|them|people) )?(ever )?(again )?"
         r"(contact|text|txt|message|msg|email|call|ring|phone|spam|"
         r"(write|bother|harass|send|pester) (to )?(me|us|this number|anything|any))",
         None),
    _cue(r"(ya )?no (me |nos |le |les )?(vuelvan a |vuelvas a |vuelva a |sigan |)"
         r"(escri[bv](an|as|a|ir|irme)|mand(en|es|e|ar|arme)|envi(en|es|e|ar|arme)|"
         r"contact(en|es|e|ar|arme)|molest(en|es|e|ar|arme)|busqu(en|es|e)|llam(en|es|e|ar|arme)|"
         r"marqu(en|es|e)|acos(en|es|e|ar|arme))",
         None),
    _cue(
        r"(dejen|deja|deje|dejar|dejes|dejo|dejamos|dejaran|dejarian|dejaria|dejame|dejenme|dejeme|dejanos|"
        r"paro|paramos) de",
        None,
    ),
    # Stop-like only when they name what: "remove me", "end all messages", "no more fees".
    _cue(r"end|ending|remove|removing|delete|deleting|erase|block|take (\w+ ){0,3}off|get rid of|"
         r"turn off|switch off|disable|deactivate|no more|no further|no mas|no quiero mas|baja|"
         r"(be|get|being|getting) (removed|taken off|unsubscribed|deleted)|(want|get) (me |us )?out of|"
         r"desactiv(en|ar|a|e)|olvid(ense|en|ate|ese|a) de|"
         r"quiten|quita|quitar|quitame|quitenme|quiteme|quitenlos|quitarme|"
         r"borr(en|a|ar|e|enme|ame|eme|arme)|elimin(en|a|ar|e|enme|ame|eme|arme)|"
         r"bloque(en|a|ar|e|enme|ame|eme)|termin(en|ar|e)",
         None),
    _cue(r"(i )?(dont|do not|no longer) (want|need|wish|consent)|(withdraw|revoke) (my )?consent|"
         r"(ya )?no (quiero|deseo|quisiera|necesito|autorizo|doy mi consentimiento)",
         None, contact_only=True),
)  # fmt: skip
#: Uses of those words that ask nothing of us.
_NOT_A_REQUEST = re.compile(
    r"(?<!\S)(?:"
    r"(cant|cannot|can not|couldnt|could not|dont|do not|never|had to|have to) (stop|quit)\w*|i quit|"
    r"stop by|non stop|bus stop|the end|at the end|end (my|it|things|myself)|"
    r"quit\w* (la|mi|su|tu) vida|quitarme la vida|quitarse la vida|"
    r"no (puedo|podia|pude|puede|dejo|paro) (de )?(parar|dejar|para|de)|no (dejen|deje|dejes|pares|paren) de|"
    r"(me|te|le|lo|la|nos) (dieron|dio|dan|dara|daran|van a dar|acaban de dar) de baja|"
    r"(de|en) baja (por (?!favor)\w+|medica)|estoy de baja|"
    r"no (me |nos )?(basta|alcanza)"
    r")(?!\S)"
)


def _opener(before: str) -> bool:
    words = before.split()
    return not words or words[-1] in _FILLERS


def _cue_spans(text: str) -> list[tuple[int, int, _Cue]]:
    """Stop-like words as (start, end, cue) spans of the normalized text; the first cue of
    :data:`_CUES` that matches some words wins them."""
    blocked = [m.span() for m in _NOT_A_REQUEST.finditer(text)]
    spans: list[tuple[int, int, _Cue]] = []
    for cue in _CUES:
        for match in cue.pattern.finditer(text):
            start, end = match.span()
            if any(start < b_end and b_start < end for b_start, b_end in blocked):
                continue
            if any(start < s_end and s_start < end for s_start, s_end, _ in spans):
                continue
            if cue.opener_only and not _opener(text[:start]):
                continue
            spans.append((start, end, cue))
    return sorted(spans, key=lambda span: span[0])


_INFINITIVE = re.compile(r"\w+(ar|er|ir)(me|te|se|nos|lo|la|le|los|las|les)?")


def _inside(cue: str) -> list[str]:
    """The words of a cue after its first one ("dont text", "take my number off"), and the
    "me" of Spanish forms like "quítenme", "bórrenme"."""
    words = cue.split()
    inner = words[1:]
    if len(words[0]) > 5 and words[0].endswith(("me", "nos")):
        inner.insert(0, "me")
    return inner


def read_opt_out(text: str) -> OptOutReading:
    """What the stop-like words of a message are aimed at.

    CLEAR when any of them is aimed at contacting the person ("stop texting me", "no me escriban
    más", "take me off your list", "leave me alone"); otherwise ELSEWHERE naming the first thing
    named (fees, interest, direct_debit, plan, letters, debt, calls); UNSURE for stop-like words
    that name nothing ("stop", "stop it", "basta"); NONE without any.
    """
    norm = normalize(text)
    spans = _cue_spans(norm)
    aims: list[str] = []
    for index, (start, end, found) in enumerate(spans):
        cue, default = norm[start:end], found.default
        next_start = spans[index + 1][0] if index + 1 < len(spans) else len(norm)
        after = norm[end:next_start].split()
        if cue == "para":
            if after and (_INFINITIVE.fullmatch(after[0]) or after[0] in {"que", "mi", "ti", "usted"}):
                continue  # "para pagar", "para que": in order to
            if all(word in _FILLERS for word in after):
                default = _UNSURE  # "para ya", "para porfa"
        aim = _aimed_at(_inside(cue) + after)
        if aim is None and all(word in _FILLERS for word in after):
            # Nothing after it: "i want these texts to stop", "make the calls stop".
            previous_end = spans[index - 1][1] if index else 0
            before = norm[previous_end:start].split()[-5:]
            named = _aimed_at(list(reversed(before)))
            if named is not None and (named != "contact" or any(_STRONG.fullmatch(w) for w in before)):
                aim = named
        if found.contact_only and aim != _CONTACT_DEFAULT:
            continue
        if aim is None and default is None and _only(norm, start, end):
            default = _UNSURE  # a message of just "remove", "no more"
        if aim is None:
            aim = default
        if aim is not None:
            aims.append(aim)
    if not aims:
        return OptOutReading(Reading.NONE)
    if _CONTACT_DEFAULT in aims:
        if _HOURS.search(norm):
            return OptOutReading(Reading.ELSEWHERE, "hours")  # "stop texting me at work"
        return OptOutReading(Reading.CLEAR)
    targets = [aim for aim in aims if aim in TARGETS]
    if targets:
        return OptOutReading(Reading.ELSEWHERE, targets[0])
    return OptOutReading(Reading.UNSURE)


def _only(text: str, start: int, end: int) -> bool:
    """The cue is the whole message, give or take a "please"."""
    rest = (text[:start] + " " + text[end:]).split()
    return all(word in _FILLERS for word in rest)


def decide(
    text: str, intent: str | None, confidence: float, *, threshold: float = CONFIDENT
) -> OptOutDecision:
    """OPT_OUT only when the classifier says opt_out with confidence >= threshold AND the reading is CLEAR;
    ASK when the classifier says opt_out otherwise; NOT_OPT_OUT for any other intent."""
    if intent != "opt_out":
        return OptOutDecision.NOT_OPT_OUT
    if confidence >= threshold and read_opt_out(text).reading is Reading.CLEAR:
        return OptOutDecision.OPT_OUT
    return OptOutDecision.ASK
