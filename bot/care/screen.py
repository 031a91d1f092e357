"""The safety screen: a deterministic, high-recall look at every inbound text before the dialogue.

Pure: no I/O, the standard library only, nothing of ours. ``screen(text)`` says whether the text
shows a sign of crisis (suicidal thoughts, self-harm, a threat to hurt someone), another sign of
vulnerability (addiction, abuse, illness, mental health, caring for someone, difficulty reading,
bereavement) or an idiom of distress ("this debt is killing me", "no puedo más").

How it reads a text:

1. ``normalise`` once: accents stripped (NFKD), lower case, apostrophes joined ("don't" is
   "dont"), everything that is not a letter or a digit becomes a space, every run of a repeated
   letter becomes one letter ("dieeee" and "die", "kill" and "kil" read the same), and common
   SMS spellings are expanded ("wanna" is "want to", "im" is "i am", "kiero" is "quiero").
2. Harmless figures of speech ("I'd kill for a coffee", "me muero de risa", "my phone died") are
   blotted out, so that nothing below can read them.
3. The patterns of the lexicon are tried (each only when the text holds a word one of its matches
   could begin with, which keeps a long message fast and never changes the answer). Patterns
   are written in plain spelling and read the same way as the text (the repeated letters of a
   pattern are squeezed when it is compiled), so ``kill`` in a pattern matches "kill", "kil" and
   "killll".

A text with a crisis sign is ``crisis`` whatever else it holds; ``distress`` still says whether
it also held an idiom of distress.

Recall comes first: the cost of a false crisis is a kind message and a person; the cost of a
missed one is not to be thought of. Negations are not read ("I don't want to die" is a sign),
but ordinary debt messages ("kill the direct debit", "no quiero seguir pagando") are not.

``matched`` holds the names of the patterns that matched ("self_harm.en.want_to_die"), never the
person's words: it goes to agents and logs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum


class Concern(str, Enum):
    """A sign the screen recognises. ``CRISIS`` holds the ones that are a crisis."""

    SELF_HARM = "self_harm"  # suicidal thoughts or self-harm, direct or indirect (crisis)
    HARM_TO_OTHERS = "harm_to_others"  # a threat to hurt or kill someone else (crisis)
    ADDICTION = "addiction"  # gambling or other addiction
    ABUSE = "abuse"  # domestic or financial abuse, coercion
    ILLNESS = "illness"  # serious illness, hospital, surgery, cancer, chemo...
    MENTAL_HEALTH = "mental_health"  # depression, anxiety, breakdown, bipolar... (not crisis by itself)
    CARER = "carer"  # caring for someone (a carer's burden)
    READING = "reading_difficulty"  # can't read well, dyslexia, doesn't understand the language
    BEREAVEMENT = "bereavement"  # a death in the family, funeral, widowed...


CRISIS: frozenset[Concern] = frozenset({Concern.SELF_HARM, Concern.HARM_TO_OTHERS})


@dataclass(frozen=True)
class Screening:
    """What the screen saw in one text."""

    concerns: frozenset[Concern] = frozenset()
    #: An idiom of distress or milder despair that is not a crisis sign by itself.
    distress: bool = False
    #: "en" or "es": the language of what matched (None when nothing matched).
    language: str | None = None
    #: Names of the patterns that matched (stable identifiers, never the person's text).
    matched: tuple[str, ...] = ()

    @property
    def crisis(self) -> bool:
        """Any concern in ``CRISIS``: the crisis line and a person, nothing else."""
        return bool(self.concerns & CRISIS)

    @property
    def vulnerable(self) -> bool:
        """Any concern outside ``CRISIS``."""
        return bool(self.concerns - CRISIS)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_APOSTROPHES = re.compile("['\u2018\u2019\u201b\u02bc\u02b9`\u00b4\u2032]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1+")
#: A lone "2" between words is "to" ("want 2 die"); amounts are left alone.
_TWO_AS_TO = re.compile(r"(?<=[a-z] )2(?= [a-z])")
#: Repeated letters of a pattern, outside escapes ("\bb" keeps its "b").
_PATTERN_REPEATS = re.compile(r"(?<!\\)([a-z])\1+")


def _squeeze(text: str) -> str:
    return _REPEATS.sub(r"\1", text)


#: SMS spellings and contractions (keys as they read once squeezed and without apostrophes).
_SPELLINGS: dict[str, str] = {
    # English
    "u": "you",
    "ur": "your",
    "yr": "your",
    "r": "are",
    "wanna": "want to",
    "wana": "want to",
    "gonna": "going to",
    "gunna": "going to",
    "finna": "going to",
    "gotta": "got to",
    "imma": "i am going to",
    "im": "i am",
    "ive": "i have",
    "id": "i would",
    "dont": "do not",
    "cant": "can not",
    "cannot": "can not",
    "wont": "will not",
    "didnt": "did not",
    "doesnt": "does not",
    "isnt": "is not",
    "wasnt": "was not",
    "werent": "were not",
    "wouldnt": "would not",
    "couldnt": "could not",
    "shouldnt": "should not",
    "havent": "have not",
    "aint": "am not",
    "youre": "you are",
    "youll": "you will",
    "youd": "you would",
    "theyll": "they will",
    "itll": "it will",
    "thatll": "that will",
    "theyre": "they are",
    "theyd": "they would",
    "hes": "he is",
    "shes": "she is",
    "thats": "that is",
    "whats": "what is",
    "its": "it is",
    "theres": "there is",
    "ppl": "people",
    "pls": "please",
    "plz": "please",
    "cuz": "because",
    "coz": "because",
    "cos": "because",
    "bc": "because",
    "rn": "right now",
    "tonite": "tonight",
    "2nite": "tonight",
    "2night": "tonight",
    "2day": "today",
    "2moro": "tomorrow",
    "2morrow": "tomorrow",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "b4": "before",
    "some1": "someone",
    "no1": "no one",
    "any1": "anyone",
    "every1": "everyone",
    "ded": "dead",
    "myslef": "myself",
    "mysef": "myself",
    "meself": "myself",
    "mself": "myself",
    "myselff": "myself",
    "hubby": "husband",
    "bf": "boyfriend",
    "gf": "girlfriend",
    "wo": "without",
    "hav": "have",
    "rdy": "ready",
    "dnt": "do not",
    "rly": "really",
    "kno": "know",
    "n": "and",
    # Spanish
    "q": "que",
    "k": "que",
    "ke": "que",
    "qe": "que",
    "kiero": "quiero",
    "qiero": "quiero",
    "qero": "quiero",
    "kero": "quiero",
    "kieres": "quieres",
    "kiere": "quiere",
    "kieren": "quieren",
    "keria": "queria",
    "kisiera": "quisiera",
    "kien": "quien",
    "kitarme": "quitarme",
    "kitar": "quitar",
    "xq": "porque",
    "pq": "porque",
    "porq": "porque",
    "xk": "porque",
    "pk": "porque",
    "porke": "porque",
    "tb": "tambien",
    "tmb": "tambien",
    "tbn": "tambien",
    "toy": "estoy",
    "nadien": "nadie",
    "aki": "aqui",
    "mui": "muy",
    "bn": "bien",
    "xfa": "por favor",
    "porfa": "por favor",
}
_TOKENS: dict[str, str] = {_squeeze(key): _squeeze(value) for key, value in _SPELLINGS.items()}


def normalise(text: str) -> str:
    """The text as the patterns read it (see the module docstring)."""
    text = _APOSTROPHES.sub("", text)
    text = text.replace("w/o", " without ").replace("w/", " with ")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in text if not unicodedata.combining(char)).casefold()
    text = _squeeze(_NOT_ALNUM.sub(" ", text))
    text = _TWO_AS_TO.sub("to", text)
    return " ".join(_TOKENS.get(token, token) for token in text.split())


# --------------------------------------------------------------------------------------------
# Building blocks, written <name> inside patterns
# --------------------------------------------------------------------------------------------

_MACROS: dict[str, str] = {
    # Fillers: up to one, two or three words ("i just really want to die").
    "w": r"(?:[a-z0-9]+ )?",
    "ww": r"(?:[a-z0-9]+ ){0,2}",
    "www": r"(?:[a-z0-9]+ ){0,3}",
    # Oneself, spelled any way.
    "self": r"(?:my ?self|me ?self|my ?sel|my ?slef|my ?sef|myslf|mi ?self)",
    # Family, English.
    "fam": (
        r"(?:mum|mom|mother|mam|mama|mommy|mummy|ma|dad|father|daddy|papa|pa|husband|wife|partner|other half"
        r"|spouse|son|daughter|child|baby|boy|girl|brother|sister|twin|nan|nana|gran|granny|grandma"
        r"|grandmother|grandad|granddad|grandpa|grandfather|grandson|granddaughter|uncle|aunt|auntie|cousin"
        r"|niece|nephew|fiance|fiancee|boyfriend|girlfriend|best friend|friend|parents|family|kids|children"
        r"|sons|daughters|step ?dad|step ?mum|step ?mom|step ?son|step ?daughter|mother in law|father in law"
        r"|in laws|wifey)"
    ),
    # Family, Spanish.
    "fam_es": (
        r"(?:madre|mama|mami|padre|papa|papi|padres|marido|esposo|esposa|mujer|pareja|novio|novia|hijo|hija"
        r"|hijos|hijas|bebe|nene|nena|hermano|hermana|hermanos|abuelo|abuela|abuelos|tio|tia|primo|prima"
        r"|suegro|suegra|nieto|nieta|sobrino|sobrina|prometido|prometida|companero|companera|amigo|amiga"
        r"|familia|yerno|nuera|cunado|cunada)"
    ),
    # People someone might threaten, English.
    "person": (
        r"(?:<fam>|ex|ex husband|ex wife|ex partner|exhusband|exwife|ex boyfriend|ex girlfriend|boss|manager"
        r"|landlord|neighbour|neighbor|neighbours|staff|agent|agents|collector|collectors|bailiff|bailiffs"
        r"|caller|callers|people|workers|employees|guy|guys|man|men|woman|women|lady|bloke|person|bastard"
        r"|bastards|idiot|idiots|team|ceo|director|lot|receptionist|advisor|adviser|advisors|advisers"
        r"|operator|operators|bank manager)"
    ),
    # Whom a threat is aimed at, English.
    "obj": (
        r"(?:you|ya|yall|you all|him|her|them|someone|somebody|some one|anyone|anybody|everyone|everybody"
        r"|every one|all of you|one of you|each of you|whoever|the lot of you|every one of you|(?:my|your"
        r"|his|her|their|our|the|that|this|those|these|every|some|a|an|another|any|one of your"
        r"|one of the) (?:next |first |last |other |whole |same |new |fucking |bloody |damn )?<person>)"
    ),
    # The partner or relative who takes money or controls it.
    "abuser": (
        r"(?:husband|wife|partner|spouse|boyfriend|girlfriend|ex|ex husband|ex wife|ex partner|exhusband"
        r"|exwife|other half|fiance|fiancee|son|daughter|dad|father|mum|mom|mother|brother|sister|stepdad"
        r"|step dad|carer|family)"
    ),
    # Someone cared for, English and Spanish.
    "ward": (
        r"(?:mum|mom|mother|mam|dad|father|parents|nan|gran|grandma|grandmother|grandad|grandpa|grandfather"
        r"|husband|wife|partner|brother|sister|aunt|uncle|disabled|sick|elderly|poorly|ill|terminally ill"
        r"|aging|ageing|old|mother in law|father in law|in laws)"
    ),
    "ward_es": (
        r"(?:madre|mama|padre|papa|padres|abuela|abuelo|abuelos|marido|esposo|esposa|mujer|pareja|hermano"
        r"|hermana|suegra|suegro|tia|tio|familiar|nieto|nieta|(?:hijo|hija|hijos|hijas|nino"
        r"|nina) (?:discapacitad[oa]s?|enferm[oa]s?|dependientes?|con discapacidad|con autismo"
        r"|con paralisis))"
    ),
    "poss_p": r"(?:my|your|his|her|their|the|that|this|those|these) <person>",
    # Not a figure of speech: "die of embarrassment", "morir de risa" are idioms, not signs.
    "noidiom": (
        r"(?! (?:of|from|de|del) (?:the |la |un |una )?(?:embarrassment|shame|laughter|laughing|boredom"
        r"|curiosity|verguenza|risa|aburrimiento|curiosidad|envidia|ganas|sueno|calor|frio|hambre|sed|susto"
        r"|disgusto|infarto|miedo|nervios|asco|pena|amor|gusto|cansancio|a heart attack|shock))"
    ),
}
_MACRO = re.compile(r"<([a-z_]+)>")


def _expand(source: str) -> str:
    while True:
        expanded = _MACRO.sub(lambda m: _MACROS[m.group(1)], source)
        if expanded == source:
            return expanded
        source = expanded


def _compile(source: str) -> re.Pattern[str]:
    return re.compile(_PATTERN_REPEATS.sub(r"\1", _expand(source)))


# --------------------------------------------------------------------------------------------
# The lexicon: (name, pattern) per family and language. Patterns read normalised text.
# --------------------------------------------------------------------------------------------

_Table = tuple[tuple[str, str], ...]

#: Harmless figures of speech, blotted out before anything else is read.
_HARMLESS_EN: _Table = (
    # "I'd kill for a coffee", "I could murder a curry", "kill two birds".
    (
        "kill_for_a_thing",
        r"\bkill for (?:a|an|some)\b|\bkill two birds\b|\b(?:kill|murder) (?:a|an) (?:pint|curry|coffee"
        r"|drink|beer|burger|pizza|kebab|cup of tea|cuppa|takeaway|sandwich|bacon sandwich|brew"
        r"|glass of wine|bottle of wine)\b",
    ),
    ("kill_time", r"\bkill(?:ing)? (?:the )?time\b"),
    ("killed_it", r"\b(?:kill|killed|killing|kills) it\b"),
    # "dying to know the balance", "a cake to die for".
    (
        "dying_to_know",
        r"\bdying (?:to|for) (?:know|see|hear|find out|get|try|meet|go|tell|talk|speak|a|an|some)\b",
    ),
    ("to_die_for", r"\bto die for\b"),
    (
        "die_laughing",
        r"\b(?:die|died|dying|dead|kill myself|killing myself|killed myself) (?:laughing|of laughter"
        r"|with laughter|from laughing)\b",
    ),
    ("bored_to_death", r"\bbored to death\b"),
    # "dead tired", "dead battery", "dead end job".
    (
        "dead_as_adjective",
        r"\bdead (?:tired|beat|end|line|battery|phone|link|zone|serious|easy|loss|cert|funny|broke|to me|air"
        r"|ringer)\b",
    ),
    ("deadly_serious", r"\bdeadly serious\b"),
    ("over_my_dead_body", r"\bover my dead body\b"),
    # "my phone died", "the battery is dead".
    (
        "machine_died",
        r"\b(?:phone|battery|laptop|computer|car|engine|tv|printer|internet|wifi|mobile|charger|signal|app"
        r"|tablet|ipad|iphone|screen|line|call|network|router|fridge|boiler|washing machine|card|link"
        r"|website|site|page|server|system|deal|offer|plant|plants) (?:is |was |has |just |finally "
        r"|completely |has just |went )?(?:died|dead|dying|die|dies)\b",
    ),
    # "shoot me an email", "I'll shoot you a text".
    (
        "shoot_a_message",
        r"\bshoot (?:me|you|him|her|them|us|over|across|off|back)(?: (?:an?|the|your|my|over|back"
        r"|across))? (?:email|e mail|text|message|mail|line|note|quick|call|copy|link|reply|pic|photo|update"
        r"|dm|details|info|documents|form|address|number|paperwork|payslips|statement|statements|over"
        r"|across)\b",
    ),
    ("shot_in_the_foot", r"\bshot (?:myself|yourself|themselves|ourselves) in the foot\b"),
    ("cut_some_slack", r"\bcut (?:myself|me|you) (?:some )?(?:slack|a break|off)\b"),
    (
        "wont_kill_you",
        r"\b(?:will not|would not|did not|does not|is not going to|not going to|never"
        r"|it will not) kill (?:you|ya|anyone|anybody|them)\b",
    ),
    ("killer_deal", r"\bkiller (?:deal|offer|price|rate)\b"),
)
_HARMLESS_ES: _Table = (
    # "me muero de risa", "me muero por saber", "muerta de sueño".
    (
        "morir_de_risa",
        r"\b(?:me muero|me moria|me mori|morirme|muero|muert[oa]|me voy a morir|me estoy muriendo) (?:de"
        r"|del) (?:la )?(?:risa|ganas|curiosidad|sueno|calor|frio|amor|envidia|gusto|cansancio"
        r"|aburrimiento)\b",
    ),
    (
        "morir_por_saber",
        r"\b(?:me muero|muero|me moria) por (?:saber|ver|conocer|ir|probar|tener|hablar|que)\b",
    ),
    ("matar_de_risa", r"\bmata(?:s|n|ste|ron)? de risa\b"),
    ("matar_el_tiempo", r"\bmatar el (?:tiempo|rato|gusanillo|hambre)\b"),
    # "se me murió el móvil", "batería muerta".
    (
        "aparato_muerto",
        r"\b(?:murio|muere|ha muerto|murio el|murio la) (?:el |la |mi )?(?:movil|bateria|telefono|celular"
        r"|coche|carro|portatil|ordenador|computadora|internet|wifi|tele|cargador|router)\b",
    ),
    ("aparato_muerto_2", r"\b(?:movil|bateria|telefono|celular|cargador|linea|coche) muert[oa]\b"),
    ("doble_filo", r"\barma de doble filo\b"),
    ("dos_pajaros", r"\bmatar dos pajaros\b"),
    ("punto_muerto", r"\b(?:punto|tiempo|peso|angulo) muerto\b"),
    # "cortarme el pelo", "van a cortarme la luz": nothing to do with harm.
    (
        "cortar_el_pelo",
        r"\bcortar(?:me|te|le|nos)? (?:el pelo|el cabello|la barba|las unas|el fleco|la luz|el agua|el gas"
        r"|el internet|el telefono|la linea|el servicio|el suministro|el credito)\b",
    ),
    (
        "matar_por_un_cafe",
        r"\bmatar(?:ia)? por (?:un|una) (?:cafe|cafecito|cerveza|cervecita|cigarro|pitillo|bocadillo|helado"
        r"|copa|siesta|vacaciones|dia libre|pizza|hamburguesa)\b",
    ),
    (
        "tirarse_a_la_piscina",
        r"\b(?:tirarme|me tiro|me voy a tirar) (?:a la piscina|en el sofa|a la cama|en la cama)\b",
    ),
)

# ---- SELF_HARM --------------------------------------------------------------------------------

_SELF_HARM_EN: _Table = (
    # Wanting to die: "i want to die", "wanna dieee", "want 2 die", "ready to die".
    (
        "want_to_die",
        r"\b(?:want|wanted|wanting|wish|wishing|need|needing|ready|prepared|prefer|deserve|deserving|like"
        r"|plan|planning|trying|tried) (?:to )?<w>(?:die|be dead|not be alive|not exist|stop existing"
        r"|cease to exist)\b<noidiom>",
    ),
    # Typed in a hurry: "iwant to die", "i wnt to die", "iwanttodie".
    (
        "want_to_die_typo",
        r"\bi ?(?:want|wana|wnt|wan|watn|wamt|wabt|wnat|waant|need) ?(?:to|t|ro|yo)? ?(?:die|di|dei|dieee"
        r"|ded)\b<noidiom>",
    ),
    # Wanting it all to end: "i feel like dying", "i want it all to stop", "im going to jump".
    (
        "feel_like_dying",
        r"\bfeel(?:ing)? like (?:dying|i want to die|ending it|ending it all|killing myself|ending my life"
        r"|i am going to die|giving up on life)\b<noidiom>",
    ),
    (
        "want_it_all_to_end",
        r"\bwant (?:it all|everything|the pain|all of it|my life) to (?:end|stop|be over)\b|\bwant (?:it all"
        r"|my life) to stop\b",
    ),
    (
        "going_to_jump",
        r"\b(?:going to|about to|ready to|want to|gonna) jump\b(?! (?:on|in|into|at|through|the|to|ship|back"
        r"|off the (?:call|phone)|ahead|straight|up|over|onto))",
    ),
    (
        "dead_soon",
        r"\b(?:i will|i would|i might|i may|ill) (?:be|already be) dead (?:soon|by|before|anyway|tomorrow"
        r"|shortly|in a)\b",
    ),
    # "i am going to die", "i should just die".
    ("going_to_die", r"\bi am (?:going to|about to|ready to) <w>die\b(?! for)<noidiom>"),
    ("should_be_dead", r"\bi (?:should|deserve to|ought to) (?:just )?(?:die|be dead)\b<noidiom>"),
    # "i wish i was dead", "wish i had never been born".
    (
        "wish_dead",
        r"\bwish (?:that )?i (?:was|were|had|could|would) <w>(?:dead|die|died|never been born|not been born"
        r"|never born|not exist|stop existing|disappear|go to sleep and not wake up)\b",
    ),
    (
        "rather_be_dead",
        r"\b(?:rather|sooner|prefer to) (?:be dead|die|not be alive|not exist|not be here)\b<noidiom>",
    ),
    # Better off dead, gone, without me.
    (
        "better_off_dead",
        r"\bbetter off (?:dead|gone|without me|not here|not alive|if i (?:was|were) (?:dead|gone))\b",
    ),
    (
        "everyone_better_off",
        r"\b(?:everyone|everybody|they|my family|my kids|my children|the world|people|my wife|my husband"
        r"|my partner) (?:would|will) be better off\b(?! (?:if you|if they|with a|with the|paying|going"
        r"|getting|calling|using|switching|talking|speaking|contacting|dealing|knowing|financially))",
    ),
    ("better_without_me", r"\b(?:better|happier|easier|fine) (?:off )?without me\b"),
    (
        "better_if_i_was_gone",
        r"\b(?:better|happier|easier) (?:for (?:everyone|everybody|them|my family|all|all of us) "
        r"|off )?if i (?:was dead|were dead|was gone|were gone|died|disappeared|did not exist|never existed"
        r"|was not here|were not here|was not around|was never born|killed myself|ended it)\b",
    ),
    (
        "worth_more_dead",
        r"\bworth more (?:to them |to my family )?dead\b|\bbetter off with (?:the |my )?(?:life insurance"
        r"|insurance money|insurance pay ?out|pay ?out)\b",
    ),
    # Nobody would miss me.
    (
        "nobody_would_miss_me",
        r"\b(?:no one|nobody|none|no body|not one person|not a single person|not anyone)(?: would| will"
        r"| is going to| going to| would even| will even| would ever)? (?:miss|care|notice|cry|mourn"
        r"|grieve)(?: about| for)? (?:me|if i (?:die|died|was gone|were gone|disappeared|was dead|were dead"
        r"|killed myself|ended it)|when i am (?:gone|dead))\b",
    ),
    (
        "no_one_would_care",
        r"\b(?:no one|nobody|none|not one person) (?:would|will|is going to) (?:even )?(?:care|notice"
        r"|miss me|cry)\b(?! (?:about (?:the|my|this|your|it)|if you|that|what))",
    ),
    # Hoping to die, joining the dead, last words: "i hope i die in my sleep", "tell my kids i love them".
    (
        "hope_i_die",
        r"\b(?:hope|wish|pray) (?:that )?i (?:die|just die|drop dead|do not wake|never wake|get killed"
        r"|am dead|will die|would die|die in my sleep)\b<noidiom>",
    ),
    (
        "join_them_in_heaven",
        r"\b(?:be|join|see) (?:with )?(?:my )?<fam> (?:again )?in heaven\b|\bjoin my late <fam>\b"
        r"|\bjoin my <fam> (?:in heaven|up there|on the other side)\b",
    ),
    ("tell_them_i_love_them", r"\btell (?:my|the) <fam> (?:that )?i (?:love|loved) (?:them|him|her|you)\b"),
    (
        "saying_goodbye",
        r"\b(?:wanted|want|need|going|here|just) to say goodbye\b(?! to (?:this|my|the|your) (?:debt|account"
        r"|loan|card|company))|\b(?:i am|am) saying (?:my )?goodbyes?\b(?! to (?:this|my|the|your) (?:debt"
        r"|account|loan|card|company))|\bsorry for everything <ww>(?:goodbye|bye|i love you|love you all"
        r"|forgive me)\b",
    ),
    # "nobody cares if i live or die", "they would not even miss me".
    (
        "cares_if_i_live_or_die",
        r"\b(?:care|cares|cared|caring|know|notice) (?:if|whether) i (?:live or die|die|am dead|live"
        r"|am alive|disappeared|was gone|were gone)\b",
    ),
    ("would_not_miss_me", r"\b(?:would|will) not (?:even )?(?:miss|notice) me\b(?! on| at| in| when i pay)"),
    # No reason to live, nothing to live for, what is the point of living.
    (
        "no_reason_to_live",
        r"\b(?:no|not any|lost (?:my |the |all )?|nothing but|any|no more|without a) ?(?:reason|reasons"
        r"|point|purpose|will|desire|meaning)(?: left)? (?:to|for|in) (?:live|living|life|go on|going on"
        r"|carry on|carrying on|be alive|being alive|exist|existing|stay alive|staying alive|keep living"
        r"|wake up|keep going|continue)\b",
    ),
    ("nothing_to_live_for", r"\bnothing (?:left )?to live for\b|\bnothing left to live\b"),
    (
        "see_no_point_living",
        r"\bpoint (?:of|in) (?:living|being alive|existing|going on living|carrying on living|my life"
        r"|life)\b|\bsee the point (?:of|in) (?:going on|carrying on|anything any ?more)\b(?! with)",
    ),
    (
        "point_of_living",
        r"\b(?:what is|whats) the point (?:of|in) (?:living|life|going on|being alive|carrying on|existing"
        r"|waking up|me being here|me being alive)\b",
    ),
    (
        "no_point_living",
        r"\bno point (?:in )?(?:living|being alive|going on|carrying on|existing|life|me being here"
        r"|waking up)\b",
    ),
    (
        "life_not_worth_it",
        r"\blife (?:is not|is no longer|isnt|not|aint) (?:worth|worth it|worth living)\b"
        r"|\blife is (?:pointless|meaningless|over)\b|\bmy life is over\b",
    ),
    # Not wanting to live or be here anymore.
    (
        "not_want_to_live",
        r"\b(?:do not|no longer|not|never|will not|would not|rather not|dont) <w>(?:want|wish|feel like"
        r"|care) (?:to )?(?:live|living|be alive|being alive|be here|being here|exist|existing|stay alive"
        r"|staying alive|keep living|wake up|waking up|see tomorrow|be around|be on this earth"
        r"|be in this world)\b(?! (?:like|in|with|at|there|near|under|on|off|pay|paycheck|hand|by|for|this"
        r"|that|here with|round))",
    ),
    (
        "not_want_to_go_on",
        r"\b(?:do not|no longer|not) <w>want to (?:go on|carry on|keep going)(?: any ?more"
        r"| living)?\b(?! (?:with|paying|like|on|at|in|the|this|that|my|your|calling|texting|talking|waiting"
        r"|being|back|and forth|to|for|a|an|some|any|holiday|leave|benefits|strike|record|about))",
    ),
    # "tired of living", "i want out of this life", "done with life".
    (
        "tired_of_living",
        r"\b(?:tired|sick|done|finished|exhausted|weary|fed up) (?:of|with) (?:living|being alive|life"
        r"|existing)\b(?! (?:paycheck|pay check|hand|week|month|like|with|in|on|at|here|there|of|under"
        r"|from))",
    ),
    (
        "want_out_of_life",
        r"\bwant out of (?:this|my) life\b|\bwant out of life\b|\bcan not do life\b|\bnot worth living\b"
        r"|\bdone with this life\b",
    ),
    ("done_living", r"\bdone (?:living|with life|with living|with being alive)\b"),
    (
        "cant_go_on_living",
        r"\bcan not (?:go on|carry on|keep|continue|keep on|bear|stand|face) (?:living|being alive|existing"
        r"|life)\b|\bcan not (?:live|exist|be alive) (?:any ?more|any longer|no more|no longer)\b",
    ),
    # Ending it: "end it all", "end my life", "ending things", "i am going to end it".
    (
        "end_it_all",
        r"\b(?:end|ending|ended|finish|finishing) (?:it|this) (?:all|for good|forever|tonight"
        r"|once and for all)\b|\b(?:end|ending|ended) (?:everything|things|it all)\b(?! (?:with|on|for the"
        r"|for this|for my|by paying|off))|\bfinish(?:ing)? it all\b",
    ),
    (
        "end_my_life",
        r"\b(?:end|ending|ended|take|taking|took|finish|finishing|end to|ends) (?:my|my own|me own) (?:life"
        r"|own life)\b(?! (?:savings|insurance|story|back|away|in my|out|of|policy))",
    ),
    (
        "end_it",
        r"\b(?:i am|i will|i am going to|going to|want to|ready to|about to|decided to|time to|plan to"
        r"|planning to|thinking of|thinking about|just|got to|have to|need to|might|could|might just"
        r"|feel like) (?:just )?(?:end|ending) it\b(?! (?:with|by|on|early|off|now and|for (?:the|this|my)"
        r"|(?:the|this|my|your) (?:agreement|contract|plan|account|payment|payments|direct debit|debt|loan"
        r"|subscription|month|week|card)|payment|paying|pay|settle|cancel|close|once i|when|after|before"
        r"|today|asap|if|in full|now by))",
    ),
    # Suicide, in every spelling, and the words of the internet.
    ("suicide", r"\bs(?:ui|u|iu|ue|uy|oi)(?:c|s|z|sc)(?:i|ie|y)?d(?:e|es|al|el|le|l|ally|ed|ing|ial)?\b"),
    ("unalive", r"\bun ?aliv(?:e|ing|ed)\b|\bsewer ?slide\b|\bself ?delet(?:e|ing)\b"),
    ("kms", r"(?<![0-9] )(?<![0-9])\bkms\b"),
    # Killing or hurting oneself: "kill myself", "kil myself", "hurt myself", "top myself".
    (
        "kill_myself",
        r"\b(?:kill|kl|killed|killing|kills|unalive|hurt|hurting|hurts|harm|harming|harmed|cut|cutting|cuts"
        r"|burn|burning|burned|burnt|scratch|scratching|scratched|shoot|shooting|shot|hang|hanging|hung"
        r"|drown|drowning|poison|poisoning|overdose|od|top|topping|topped|off|offing|end|ending|stab"
        r"|stabbing|gas|gassing|suffocate|strangle|electrocute|throw|throwing) <self>\b(?! (?:laughing"
        r"|in the foot|some slack|a break|out|at work|lifting|playing|on the|while|when i|by accident"
        r"|by mistake|shaving|cooking|falling|fell|working|to pay|trying|in work|in debt|into work|into debt"
        r"|in paperwork|for(?! real| good| sure)|on a|on my|off (?:the|your|sick|work)|at the gym|at the"
        r"|doing|with work))",
    ),
    # Self-harm: "self-harming", "started cutting again", "i want to cut", "slit my wrists".
    ("self_harm", r"\bself ?harm(?:ing|ed|s)?\b|\bself ?injur(?:y|e|ing|ies)\b|\bself ?mutilat"),
    (
        "cutting_again",
        r"\b(?:started|been|am|keep|kept|back to|begun|began|start) cutting(?: again| myself)?\b(?! (?:back"
        r"|down|costs|out|the|my|off|corners|up|it|expenses|spending|things|of))",
    ),
    (
        "want_to_cut",
        r"\b(?:want|need|urge|going|itching|craving|tempted) to (?:cut|burn|hurt)(?: again"
        r"| myself)?\b(?! (?:the|my|down|back|costs|out|off|up|it|this|that|your|a|an|some|ties|spending"
        r"|expenses|corners|contact|you|them|him|her|through|in|into|payments|interest|fees|from|deal|back"
        r"|the))",
    ),
    (
        "cut_again",
        r"\b(?:i|and|have|i have|relapsed and) (?:cut|burned|burnt|hurt myself|harmed myself"
        r"|self harmed) (?:again|on purpose|last night|tonight|deliberately)\b|\b(?:cut|burned|burnt|hurt"
        r"|harmed|scratched|hit) (?:myself )?<ww>on purpose\b",
    ),
    (
        "cut_wrists",
        r"\b(?:slit|slice|cut|cutting|slash|open|opened) (?:my|me|mi) (?:wrist|wrists|veins|vein|arms"
        r"|throat)\b",
    ),
    # Having the means ready: pills, a rope, a gun.
    (
        "pills_stockpiled",
        r"\b(?:stockpiled|hoarded|saved up|saving up|been saving|been collecting|collected|took|taken"
        r"|swallowed|swallow|counted|counting) <w>(?:all (?:the|my|of my|of the)|enough|[1-9][0-9]+|a (?:box"
        r"|bottle|pack|packet|bunch|handful|load|lot|pile|stash|tub|strip) (?:of|of my)|loads of|lots of"
        r"|every|the whole (?:box|bottle|pack|packet) of|all these|all those|a bunch of|hundreds of"
        r"|dozens of) (?:pills|tablets|paracetamol|painkillers|meds|medication|sleeping pills"
        r"|sleeping tablets|insulin|antidepressants|heroin|pill)\b",
    ),
    (
        "pills_to_take",
        r"\b(?:take|taking|have|got|bought|holding|buy|buying) <w>(?:enough|a (?:box|bottle|pack|packet"
        r"|bunch|handful|load|stash|tub) of|the whole (?:box|bottle|pack|packet) of|loads of|hundreds of"
        r"|dozens of|a bunch of|every|all (?:the|of the)) (?:pills|tablets|paracetamol|painkillers|meds"
        r"|medication|sleeping pills|sleeping tablets|insulin|antidepressants|pill)\b",
    ),
    (
        "take_all_my_pills",
        r"\b(?:going to|about to|will|ill|want to|planning to|plan to|ready to|gona) (?:take|swallow"
        r"|down) (?:all|every one of|the lot of) (?:my|the|of my|of the|these|those) (?:pills|tablets|meds"
        r"|medication|painkillers|paracetamol|sleeping pills|antidepressants)\b|\b(?:stockpiled|stockpiling"
        r"|hoarded|hoarding|been saving up|saving up|been collecting) <w>(?:my |the |some )?(?:pills|tablets"
        r"|meds|medication|painkillers|paracetamol)\b",
    ),
    (
        "sitting_with_the_means",
        r"\b(?:here|sitting|sat|holding|standing|lying) (?:here )?with (?:the|my|all the|all my|a) (?:pills"
        r"|tablets|knife|rope|gun|blade|razor|noose)\b|\b(?:pills|tablets|knife|gun|rope|blade"
        r"|razor) in my hand\b",
    ),
    (
        "means_and_intent",
        r"\b(?:have|got|holding|bought) (?:a|the|my) (?:knife|gun|rope|blade|razor|pills"
        r"|noose) <www>(?:use it|use them|do it|going to use)\b",
    ),
    (
        "use_it_on_myself",
        r"\buse (?:it|them|this|that|the (?:knife|gun|rope|pills|blade|razor)) on (?:myself|me)\b",
    ),
    (
        "have_the_pills",
        r"\b(?:have|got|bought|found) (?:the|my) (?:pills|tablets|paracetamol|painkillers"
        r"|sleeping pills) (?:ready|here|with me|lined up|in front of me|in my hand|next to me|now)\b"
        r"|\b(?:have|got|bought) the (?:pills|tablets|paracetamol|painkillers|sleeping pills)\b",
    ),
    (
        "means_ready",
        r"\b(?:pills|tablets|paracetamol|painkillers|rope|noose|gun|blade|blades|razor|razors|knife) (?:are "
        r"|is )?(?:ready|lined up|in front of me|in my hand|next to me"
        r"|counted out)\b(?! (?:for (?:collection|pick ?up)|to collect|at))",
    ),
    (
        "rope",
        r"\b(?:bought|got|have|found|tied|made|hung|set up|ordered|buying|tying|put up) (?:a|the|some"
        r"|my) (?:rope|noose|ligature)\b|\bnoose\b|\bligature\b",
    ),
    (
        "gun",
        r"\b(?:got|have|bought|get|getting|buying|loaded|load|loading|holding|hold|found|took|grabbed"
        r"|cleaned) (?:a|the|my|his|my dads|dads|a loaded|the loaded|my loaded) (?:gun|shotgun|pistol"
        r"|handgun|rifle|firearm|revolver)\b(?! (?:license|licence|permit|club|range|shop|safe|cabinet"
        r"|certificate|show))|\b(?:gun|pistol|shotgun|barrel|revolver) (?:to|in|against|at) (?:my"
        r"|me) (?:head|mouth|temple|chest|face)\b|\bbullet (?:in|through|for) (?:my|me)\b"
        r"|\bbullet in my (?:head|brain)\b",
    ),
    # The bridge, the tracks, jumping.
    (
        "bridge",
        r"\b(?:standing|stood|sitting|sat|i am|going|went|drive|driving|drove|walking|walked|heading|here"
        r"|climbed|climbing|waiting) (?:on|at|to|up to|onto|near|by|over|off|on top of|up) (?:the|a"
        r"|that) (?:bridge|cliff|ledge|edge of (?:the|a) (?:bridge|cliff|roof|building|platform)|roof"
        r"|rooftop|tracks|train tracks|railway|railway line|railway tracks|top of (?:the|a) (?:building"
        r"|car park|multi storey|bridge|cliff|tower)|cliff edge|viaduct|overpass|flyover"
        r"|motorway bridge)\b(?! (?:loan|loans|finance|lender|card|payment|team|club|game|games|night"
        r"|tournament|party|match|lesson|lessons|player|players|of the ship))",
    ),
    (
        "jump_off",
        r"\b(?:jump|jumping|jumped|throw myself|throwing myself|threw myself) (?:off|from|of|out of) (?:a"
        r"|the|my|that) (?:bridge|building|roof|cliff|balcony|ledge|tower|car park|multi storey|flyover"
        r"|window|overpass|motorway bridge|block of flats)\b",
    ),
    (
        "jump_in_front",
        r"\b(?:jump|jumping|jumped|throw myself|throwing myself|threw myself|step|stepping|walk|walking"
        r"|lie down|lay down|lying down) (?:in front of|under|onto) (?:a|the|my|that) (?:train|bus|lorry"
        r"|truck|tube|car|tram|tracks|railway|motorway|traffic)\b|\bin front of (?:a|the) (?:train|lorry)\b",
    ),
    (
        "drive_into",
        r"\b(?:drive|crash|drove|driving|crashing|steer|swerve) (?:my car |the car )?(?:into|off|of) (?:a"
        r"|the) (?:wall|tree|cliff|river|bridge|lorry|truck|sea|lake|oncoming)\b",
    ),
    (
        "hit_by_a_bus",
        r"\b(?:hope|wish|want|pray) (?:i )?(?:get|got|gets) (?:hit|run over|killed) by (?:a|the) (?:bus|car"
        r"|train|lorry|truck)\b",
    ),
    (
        "overdose",
        r"\boverdos(?:e|ed|ing)\b|\b(?:to|going to|about to|will|might|could|planning to|want to) od\b",
    ),
    # Planning: "tonight is the night", "wrote my note", "a note for my family".
    (
        "tonight_is_the_night",
        r"\btonight is the night\b|\b(?:today|tonight) is the day i (?:die|end|go|do it|kill)",
    ),
    (
        "wrote_a_note",
        r"\b(?:wrote|written|writing|write|left|leaving|leave|finished|finishing|typed) (?:a |my |the "
        r"|some )?(?:note|notes|letters|goodbye letters?|last letters?) (?:for|to) (?:my |all my "
        r"|the )?(?:family|kids|children|loved ones|sons|daughters|parents|babies|girls|boys|everyone"
        r"|wife and kids|husband and kids)\b",
    ),
    (
        "wrote_my_note",
        r"\b(?:wrote|written|writing|finished|left|leaving|typed) my (?:note|letters|goodbye)\b|\b(?:goodbye"
        r"|suicide|farewell) (?:note|notes|letter|letters|message|video)\b",
    ),
    # Goodbye for good.
    (
        "goodbye",
        r"\b(?:goodbye|good bye|bye|farewell) (?:for good|forever|for ever|world|cruel world|everyone"
        r"|everybody|to everyone|to everybody|to all|to the world|my (?:family|kids|children|love|loves"
        r"|babies))\b|\bthis is (?:my )?(?:goodbye|farewell)\b|\b(?:say|saying|said|sent"
        r"|send) (?:my )?(?:goodbyes|last goodbyes|goodbye to (?:everyone|everybody|my <fam>|the world"
        r"|all))\b|\b(?:final|last) goodbye\b",
    ),
    (
        "wont_be_around",
        r"\b(?:will not|would not|may not|might not|not going to|am not going to) be (?:here|around"
        r"|alive) (?:much longer|for much longer|for long|long|to (?:pay|see|read|worry|deal|get))\b"
        r"|\bwill not be alive\b",
    ),
    (
        "by_the_time_you_read_this",
        r"\bby the time (?:you|u|anyone|someone) (?:read|reads|see|sees|get|gets) this\b",
    ),
    # Sleep and never wake up; disappear forever.
    (
        "never_wake_up",
        r"\b(?:hope|wish|want|pray|rather|to) (?:i |to )?(?:go to sleep and |sleep and "
        r"|fall asleep and )?(?:never|not|do not|did not|would not|will not) wake up\b"
        r"|\bgo to sleep (?:and never|forever|and not)\b|\bsleep forever\b|\bnever wake up again\b",
    ),
    (
        "disappear",
        r"\b(?:want to|wish i could|need to|i will|i could just|i just want to|i wish to|i would like to"
        r"|i would love to|i am going to|i might just|i just) <w>disappear\b(?! (?:from (?:your|the"
        r"|this) (?:list|system|records|database)|off (?:your|the) (?:list|system)))|\bdisappear (?:forever"
        r"|for good|for ever|from (?:this|the) (?:world|earth|planet))\b",
    ),
    # Warning signs: giving things away, a last message, not being safe, a plan, a search for a method.
    (
        "giving_things_away",
        r"\b(?:given|giving|gave) away (?:all )?(?:of )?(?:my|all my) (?:things|stuff|belongings|possessions"
        r"|pets|dog|cat|clothes)\b|\bi will not need (?:them|it|my things|anything) any ?more\b",
    ),
    (
        "last_message",
        r"\b(?:this is|this will be|here is) my last (?:message|text|words)\b(?! to (?:you|your)\b)"
        r"|\bmy last (?:message|text|words) (?:to anyone|ever|to anybody|to the world|to everyone)\b"
        r"|\bwill not hear from me (?:again|ever again)\b(?! (?:after|until|till|once|unless|if))"
        r"|\b(?:will not|not) have to (?:chase|contact|call|text|worry about|bother) me (?:much longer"
        r"|for long|for much longer)\b|\bill be gone\b(?! (?:for|on|until|till|from|by|at|in|away|all|a|the"
        r"|next|this|soon after))|\b(?:this|it) is the end for me\b",
    ),
    (
        "not_safe",
        r"\bi am not safe\b(?! (?:to drive|from (?:the|you|your)|at work))|\bnot (?:feel"
        r"|feeling) safe (?:with|around|by) myself\b|\bdo not trust myself\b",
    ),
    (
        "will_i_be_alive",
        r"\bcan not promise <ww>(?:be alive|be here|still be here|live|make it)\b|\bnot (?:sure"
        r"|know) if i (?:will|ill|am going to) (?:be alive|still be alive|be here|still be here"
        r"|make it through)\b",
    ),
    (
        "how_i_would_do_it",
        r"\b(?:planning|planned|plan|know|decided|worked out|figured out|thinking about|researching"
        r"|chosen) how (?:i would|i will|i am going to|ill) do it\b|\bplanning how to do it\b",
    ),
    (
        "ways_to_die",
        r"\b(?:ways|way|methods|method) (?:to|of) (?:die|dying|kill myself|end it|end my life|suicide"
        r"|commit suicide)\b",
    ),
    (
        "think_about_not_being_here",
        r"\b(?:think|thinking|thought) about <w>(?:not being here|not being alive|not existing|not waking up"
        r"|dying|being dead|ending it|ending things|killing myself|disappearing|not being around)\b",
    ),
    (
        "tell_them_i_am_sorry",
        r"\btell (?:my|the) <fam> (?:that )?(?:i am sorry|sorry|i love them|i love you)\b",
    ),
    (
        "do_something_stupid",
        r"\b(?:do|doing|did) something (?:stupid|drastic|silly|bad|terrible) to (?:myself|me)\b|\b(?:before"
        r"|going to|might|will|could|about to) (?:i )?do something (?:stupid|drastic|i regret|terrible)\b",
    ),
    # Looking up a method: "how many paracetamol it takes", "painless way to die".
    (
        "looking_up_a_method",
        r"\bhow (?:much|many) (?:paracetamol|pills|tablets|painkillers|sleeping pills|insulin)(?: (?:does it"
        r"|would it|it))? (?:takes?|to (?:die|kill|overdose|od))\b|\bhow to (?:kill myself|die|hang myself"
        r"|overdose|end it|end my life)\b|\b(?:painless|quick|quickest|easiest|easy|best) (?:way|ways|method"
        r"|methods) to (?:die|go|end it|kill myself)\b",
    ),
    # "i want someone to kill me", "let me die".
    (
        "someone_kill_me",
        r"\b(?:want|wish|need|hope|pray) (?:someone|somebody|something|god|a car|a bus|a truck|a train"
        r"|the universe) (?:would |to |could |will )?<w>(?:kill|end|take) me\b",
    ),
    ("take_me", r"\b(?:god|lord) (?:please )?(?:take me|let me die)\b|\blet me (?:just )?die\b"),
)

_SELF_HARM_ES: _Table = (
    # Querer morir: "me quiero morir", "quiero morirme", "kiero morir", "ganas de morir".
    (
        "quiero_morir",
        r"\b(?:me quiero|quiero|queria|me queria|quisiera|me quisiera|me gustaria|deseo|deseaba|desearia"
        r"|prefiero|preferiria|me dan ganas de|tengo ganas de|ganas de|necesito|solo quiero|nomas quiero"
        r"|me voy a|me voy a ir a|voy a|solo me quiero|ya me quiero|me quisiera) <w>(?:morir|morirme|morirse"
        r"|estar muert[oa]|dejar de vivir|no existir|dejar de existir|no vivir"
        r"|no despertar)\b<noidiom>(?! (?:antes (?:de|que)|que pagar|sin pagar|de alquiler|bajo))",
    ),
    (
        "ojala_muerto",
        r"\bojala (?:me muera|me muriera|me muriese|estuviera muert[oa]|estuviese muert[oa]|no despierte"
        r"|no despertar|no hubiera nacido|no existiera|desapareciera|me (?:atropelle|atropellara) (?:un|una"
        r"|el)|me pase algo|me muera ya|no amanecer)\b",
    ),
    (
        "mejor_muerto",
        r"\b(?:mejor|preferiria|prefiero|quisiera|deberia|mas vale) (?:estar )?muert[oa]s?\b"
        r"|\bmejor (?:me muero|morirme|morir|me mato|matarme|desaparecer|desaparezco|no existir|no estar"
        r"|me voy para siempre)\b<noidiom>",
    ),
    # No haber nacido, valer más muerto, la vida se acabó, no estar a salvo, tener un plan, regalar sus cosas.
    ("no_haber_nacido", r"\b(?:no|nunca) (?:haber|hubiera|hubiese) nacido\b"),
    (
        "valgo_mas_muerto",
        r"\b(?:valgo|valdria|vale|valemos) mas muert[oa]\b|\bmejor con (?:el dinero del|mi|el) seguro\b",
    ),
    (
        "mi_vida_se_acabo",
        r"\bmi vida se (?:acabo|termino|ha acabado|ha terminado)\b|\b(?:este|esto) es (?:mi"
        r"|el) final(?: para mi)?\b(?! de (?:mes|la|el|los|las))|\beste es mi fin\b",
    ),
    (
        "no_estoy_a_salvo",
        r"\bno estoy a salvo\b|\bno me siento segur[oa] (?:conmigo|de mi)\b|\bno confio en mi mism[oa]\b",
    ),
    ("seguir_vivo", r"\bno se si (?:voy a seguir|sigo|seguire|estare|voy a estar|llego) viv[oa]\b"),
    (
        "como_lo_voy_a_hacer",
        r"\b(?:ya se|se|he pensado|tengo pensado|tengo planeado|planeando|decidi"
        r"|he decidido) como (?:lo voy a hacer|hacerlo|lo haria|lo hare|voy a hacerlo)\b",
    ),
    (
        "formas_de_morir",
        r"\b(?:formas|forma|maneras|manera|metodos|metodo) (?:mas (?:rapida|facil|sencilla|indolora|segura"
        r"|rapido|facil)s? )?(?:de|para) (?:morir|matarme|suicidarme|quitarme la vida|acabar con todo)\b"
        r"|\bcuantas (?:pastillas|pildoras) (?:se necesitan|hacen falta|necesito|hay que tomar)\b",
    ),
    (
        "regale_mis_cosas",
        r"\b(?:regale|he regalado|regalando|estoy regalando|regalar) (?:todas )?(?:mis cosas"
        r"|todo lo que tengo|mis pertenencias)\b|\bya no (?:las|los|lo|la) voy a necesitar\b",
    ),
    (
        "no_voy_a_estar",
        r"\bno voy a estar\b(?! (?:en|disponible|aqui (?:el|manana|hoy|esta|este)|manana|hoy|el|la|de|hasta"
        r"|para (?:la|el)|pendiente|localizable|presente|esta|este|ese))",
    ),
    (
        "ya_no_sabran_de_mi",
        r"\bno (?:van|vais|va) a saber (?:mas )?de mi\b|\bnunca mas (?:sabran|van a saber) de mi\b"
        r"|\beste es mi ultimo mensaje\b(?! (?:para (?:ustedes|usted|ti|su)|a (?:ustedes|usted|su)|sobre"
        r"|antes))",
    ),
    (
        "estrellar_el_coche",
        r"\b(?:estrellar|chocar|estrello|choco|estrellarme|estamparme) (?:el|mi) (?:carro|coche|auto"
        r"|moto) (?:a proposito|contra)\b|\bestrellarme (?:contra|con el coche|con el carro)\b",
    ),
    (
        "medio_en_la_mano",
        r"\b(?:pastillas|cuchillo|pistola|cuerda|navaja|soga|arma) en la mano\b|\bcon las pastillas (?:aqui"
        r"|delante|al lado)\b|\b(?:tengo|traigo|llevo) (?:un|una|el|la|las) (?:cuchillo|navaja|pistola|arma"
        r"|cuerda|soga|pastillas) <www>(?:lo|la|las) voy a usar\b",
    ),
    # "para qué vivir", "voy a saltar", "perdón por todo, los quiero", "que dios me lleve".
    (
        "para_que_vivir",
        r"\b(?:para|pa) que (?:vivir|seguir viviendo|seguir|existir|estar viv[oa])\b(?! (?:pagando|con"
        r"|aqui esperando|llamando|intentando|hablando|esperando))",
    ),
    (
        "voy_a_saltar",
        r"\b(?:voy a|me voy a|quiero|pienso) (?:saltar|tirarme)\b(?! (?:la|el|esa|ese|este|esta"
        r"|a la (?:piscina|cama)|al (?:agua|sofa)|en|con|por (?:la|el) (?:cola|turno)|de alegria|a pagar|los"
        r"|las))|\bsaltar al vacio\b|\btirarme al vacio\b",
    ),
    (
        "perdon_por_todo",
        r"\bperdon(?:en|enme|ad)? por todo <ww>(?:los quiero|las quiero|te quiero|adios|los amo|las amo"
        r"|cuiden|me despido)\b|\b(?:diganle|dile|decidle|digale|digan|decirle) a (?:mis"
        r"|mi) <fam_es> que (?:los|las|la|lo|les|le) (?:quiero|amo)\b|\b(?:diganle|dile|decidle|digale|digan"
        r"|decirle) a (?:mis|mi) <fam_es> que lo siento\b",
    ),
    (
        "irme_al_cielo",
        r"\b(?:ir|irme|estar|reunirme|me quiero ir|me voy) con (?:mi|mis) <fam_es> (?:al|en el) cielo\b"
        r"|\bdios me lleve\b|\bme lleve dios\b|\b(?:irme|ir|me quiero ir) con dios\b",
    ),
    (
        "que_todo_termine",
        r"\bquiero que (?:todo|mi vida|todo esto de vivir) (?:termine|acabe|se acabe|se termine|pare)\b",
    ),
    # No querer vivir: "no quiero vivir", "no quiero seguir viviendo", "no kiero vivir".
    (
        "no_quiero_vivir",
        r"\b(?:no|ya no|nunca) (?:quiero|deseo|tengo ganas de|me apetece|aguanto|puedo|soporto"
        r"|quiero seguir) <w>(?:vivir|estar viv[oa]|existir|seguir existiendo|seguir con vida"
        r"|seguir en este mundo|estar en este mundo|vivir mas)\b(?! (?:asi|en|con|de|aqui|alli|ahi|debajo"
        r"|bajo|sin|del|lejos|cerca))",
    ),
    (
        "seguir_viviendo",
        r"\bno (?:quiero|puedo|deseo|aguanto|soporto|tengo fuerzas para"
        r"|tengo ganas de) seguir viviendo\b(?! (?:en (?:esta|este|la|el) (?:casa|piso|ciudad|barrio|pais)"
        r"|aqui|con (?:mis|mi) (?:padres|suegros)))",
    ),
    # "no quiero seguir" (going on, not paying): anything but a debt, a plan or a conversation follows.
    (
        "no_quiero_seguir",
        r"\bno (?:quiero|deseo) seguir(?: ya| mas)?\b(?! (?:pagando|pagar|con|asi|recibiendo|hablando"
        r"|esperando|llamando|escribiendo|intentando|trabajando|siendo|en (?:esta|este|la|el|su|sus"
        r"|contacto)|el|la|los|las|este|esta|estos|estas|ese|esa|por|de|sus|su|mas (?:con|asi|tiempo"
        r"|mensajes|pagando)|ya (?:con|pagando)|aqui (?:esperando|con|en)|debiendo|cliente|a la espera"
        r"|perdiendo|gastando|dando|aguantando (?:sus|las|los)))",
    ),
    (
        "no_quiero_estar_aqui",
        r"\bno quiero estar (?:aqui|en este mundo|viv[oa]) (?:ya|mas|nunca mas)\b"
        r"|\bya no quiero estar (?:aqui|en este mundo|viv[oa])\b(?! (?:esperando|con|en|hablando|mas tiempo"
        r"|pagando))",
    ),
    # "cansada de vivir", "me rindo con la vida".
    (
        "cansado_de_vivir",
        r"\bme (?:canse|he cansado|harte|he hartado) de (?:vivir|la vida|estar viv[oa]|existir)\b"
        r"|\b(?:cansad[oa]|hart[oa]|agotad[oa]|aburrid[oa]) de (?:vivir|la vida|existir"
        r"|estar viv[oa])\b(?! (?:asi|con|en|de|sin|bajo))",
    ),
    (
        "no_puedo_con_la_vida",
        r"\bme rindo con (?:la|mi) vida\b|\bno (?:puedo|aguanto|soporto) (?:mas )?(?:con )?(?:la"
        r"|esta) vida\b|\bno (?:puedo|aguanto|soporto) mas con mi vida\b",
    ),
    # Quitarse la vida, acabar con todo.
    (
        "quitarme_la_vida",
        r"\b(?:quitar(?:me|se|te)?|me quito|me quite|me voy a quitar|me quiero quitar|quitare|quitaria"
        r"|me quitare|me quitaria) la vida\b|\b(?:acabar|terminar|poner fin|ponerle fin|dar fin|termino"
        r"|acabo) (?:con |a )?mi (?:propia )?vida\b",
    ),
    (
        "acabar_conmigo",
        r"\b(?:quiero|voy a|pienso|ganas de|necesito|deberia|podria) acabar conmigo(?: mism[oa])?\b",
    ),
    (
        "acabar_con_todo",
        r"(?<!pagar y )(?<!pago y )(?<!todo y )(?<!liquidar y )\b(?:acabar|terminar|acabo|termino|acabare"
        r"|terminare|acabaria) con todo\b(?! (?:lo que (?:debo|les debo|le debo)|de una vez pagando|el pago"
        r"|pagando|ya pagando|el saldo|lo pendiente|mis deudas|la deuda|el dinero|lo que falta|esto de (?:la"
        r"|las|los|el|mi|su|pagar)|lo de|de la deuda))",
    ),
    # Matarse, suicidarse: "matarme", "me voy a suicidar", "me kiero matar".
    (
        "matarme",
        r"(?<!quiere )(?<!quieren )(?<!amenazo con )(?<!amenaza con )(?<!intento )(?<!van a )(?<!va a "
        r")(?<!podria )\b(?:matarme|me voy a matar|me quiero matar|me mataria|me matare|me pienso matar"
        r"|voy a matarme|me voy a suicidar|suicidarme|suicidarse|me suicido|me suicidare|me quiero suicidar"
        r"|me suicidaria|suicidandome|me estoy suicidando)\b(?! (?:a |de )?(?:trabajar|trabajando|estudiar"
        r"|estudiando|correr|risa|entrenar|limpiar|pagar|pagarles|currar|curro))",
    ),
    (
        "me_mato",
        r"\bme mato(?=$| (?:hoy|esta noche|manana|ya|de una vez|en serio|lo juro|te lo juro|y se acab"
        r"|y listo|de verdad|si|porque|no puedo))",
    ),
    (
        "suicidio",
        r"\bsui?[csz]id(?:io|ios|a|as|arme|arse|arte|ar|o|ando|ara|aria|andome)\b|\bautolesi(?:on|ones"
        r"|onarme|ono|onandome)\b",
    ),
    (
        "pensando_en_morir",
        r"\b(?:pienso|pensando|pense|pensado|penso|pensar|pensamientos|idea|ideas) (?:en|de) (?:ya no estar"
        r"|no estar (?:aqui|viv[oa])|dejar de existir|morir|morirme|la muerte|matarme|quitarme|suicid"
        r"|acabar con todo|desaparecer|no despertar|hacerme dano|cortarme|tirarme|colgarme)",
    ),
    # Mejor sin mí, nadie me echaría de menos.
    (
        "mejor_sin_mi",
        r"\bmejor sin mi\b(?! (?:deuda|deudas|tarjeta|cuenta|prestamo|credito|trabajo|coche|carro|telefono"
        r"|movil|dinero|sueldo|nomina|casa|ayuda|firma|permiso|consentimiento|informacion|datos|pareja"
        r"|marido|mujer|novio|novia|ex|numero|nombre))",
    ),
    (
        "seria_mejor_si_muero",
        r"\b(?:seria|estaria|estarian|estarias|seria todo|serian) (?:mejor|mas felices|mas tranquil[oa]s"
        r"|mas feliz) <ww>(?:si|que) (?:yo )?(?:me muero|muriera|me muriera|me muriese|no estuviera"
        r"|no estuviese|desapareciera|no existiera|me fuera para siempre|estuviera muert[oa]"
        r"|no hubiera nacido|me mato|me matara)\b",
    ),
    (
        "nadie_notaria",
        r"\bnadie (?:notaria|se daria cuenta|echaria de menos|extranaria|lo notaria) (?:si"
        r"|cuando) (?:desaparezco|me muero|me voy|no estoy|muero|me mato|desapareciera|muriera|me fuera"
        r"|me matara)\b",
    ),
    (
        "nadie_me_echaria_de_menos",
        r"\b(?:nadie|ninguno|ni una persona) me (?:echaria|va a echar|echara|iba a echar|extranaria"
        r"|va a extranar|extranara|notaria|va a notar|notara|lloraria|va a llorar|echaria en falta"
        r"|hecharia)(?: de menos| en falta)?\b",
    ),
    (
        "a_nadie_le_importa",
        r"\ba nadie le (?:importa|importaria|va a importar|importo) si (?:me muero|muero|desaparezco|me voy"
        r"|me mato|vivo o muero|estoy viv[oa])\b|\bnadie se (?:daria|va a dar|dara) cuenta si (?:me muero"
        r"|desaparezco|me voy|no estoy|me mato)\b",
    ),
    # No vale la pena vivir.
    (
        "no_vale_la_pena_vivir",
        r"\b(?:no vale la pena|no merece la pena|no tiene sentido|ya no tiene sentido"
        r"|no le encuentro sentido a|no le veo sentido a|sin sentido) (?:seguir )?(?:vivir|viviendo|la vida"
        r"|mi vida|seguir con vida|seguir en este mundo|existir|seguir)\b(?! (?:pagando|con|asi|en (?:esta"
        r"|este|la|el)))|\b(?:la|mi) vida (?:ya )?no (?:vale|tiene) (?:la pena|sentido|nada)\b",
    ),
    (
        "no_tengo_razones",
        r"\bno tengo (?:ningun |ninguna |ni un |ni una )?(?:razon|razones|motivo|motivos|ganas|por que"
        r"|por quien|nada por lo que|nada por que|nada para|fuerzas) (?:de |para |por )?(?:vivir"
        r"|seguir viviendo|seguir adelante|estar viv[oa]|seguir)\b(?! (?:pagando|con|trabajando|aqui"
        r"|intentando|hablando|esperando))",
    ),
    # Los medios: pastillas, cuerda, arma, puente.
    (
        "tengo_las_pastillas",
        r"\b(?:tengo|compre|he comprado|guardado|guardando|junte|he juntado|juntando|acumulado"
        r"|acumulando) <w>(?:todas las|las|muchas|suficientes|un bote de|una caja de|un monton de"
        r"|un punado de|un frasco de|cajas de|botes de) (?:pastillas|pildoras|comprimidos|pastis|somniferos"
        r"|tranquilizantes|barbituricos)\b(?! (?:de la (?:tension|presion|tiroides)|del (?:corazon"
        r"|colesterol|azucar)|para la (?:tension|presion|tiroides|alergia)))",
    ),
    (
        "juntando_pastillas",
        r"\b(?:juntando|acumulando|guardando|ahorrando|he juntado|he guardado|junte|guarde) (?:las |mis "
        r"|unas |muchas )?(?:pastillas|pildoras|somniferos|tranquilizantes|comprimidos|medicinas"
        r"|medicamentos)\b|\b(?:pastillas|pildoras|medicinas) guardadas\b",
    ),
    (
        "tomar_todas_las_pastillas",
        r"\b(?:tomar|tomarme|me tome|me voy a tomar|voy a tomar|tragar|tragarme|me trague|me tomo|me tomare"
        r"|he tomado|me he tomado|tome) <w>(?:[1-9][0-9]+|todas las|todas mis|todo el bote de|muchas"
        r"|un bote de|una caja de|un monton de|un punado de|un frasco de|todas estas|cajas de"
        r"|botes de) (?:pastillas|pildoras|comprimidos|pastis|paracetamol|ibuprofeno|somniferos"
        r"|tranquilizantes|antidepresivos|medicinas|medicamentos|pastillas para dormir)\b",
    ),
    ("sobredosis", r"\bsobredosis\b"),
    (
        "cuerda",
        r"\b(?:tengo|compre|comprado|he comprado|prepare|preparado|ate|atado|colgue|tengo lista) (?:la|una"
        r"|mi) (?:cuerda|soga)\b|\bsoga\b(?! al cuello)",
    ),
    (
        "arma",
        r"\b(?:tengo|compre|he comprado|consegui|cargue|cargada|tengo cargada|tengo lista) (?:un|una|el|la"
        r"|mi) (?:arma|pistola|escopeta|revolver|rifle)\b|\b(?:pistola|arma|escopeta|revolver) (?:en"
        r"|contra) (?:la|mi) (?:cabeza|boca|sien)\b|\b(?:pegarme|meterme|darme) un (?:tiro|balazo)\b"
        r"|\bme (?:pego|meto|doy) un (?:tiro|balazo)\b|\bme (?:voy a|quiero|pienso) (?:pegar|meter"
        r"|dar) un (?:tiro|balazo)\b|\bvolarme la cabeza\b|\bme (?:voy a|quiero) volar la cabeza\b",
    ),
    (
        "tirarme",
        r"\b(?:tirarme|me voy a tirar|me tiro|aventarme|me voy a aventar|lanzarme|me voy a lanzar|arrojarme"
        r"|me voy a arrojar|saltar|me voy a saltar|tirarme a|me tirare|me aviento) (?:del|de un|de una|desde"
        r"|desde el|desde un|desde la|por (?:la|el|un|una)|al|a las|a la|a un|a una|bajo|bajo el|delante del"
        r"|delante de un) (?:puente|edificio|balcon|ventana|azotea|tejado|techo|precipicio|acantilado|vias"
        r"|via|tren|metro|rio|mar|coche|camion|autobus|trenes|piso|terraza|barranco|viaducto|octavo|quinto"
        r"|decimo)\b",
    ),
    (
        "azotea",
        r"\b(?:estoy|ando|sigo|subido|subida|parad[oa]|sentad[oa]) (?:en|sobre|encima de"
        r"|al borde de) (?:la azotea|el tejado|la cornisa|el borde|la terraza del edificio|las vias"
        r"|lo alto del edificio)\b",
    ),
    (
        "puente",
        r"\b(?:estoy|ando|voy|me voy|sigo|subido|subida|parad[oa]|sentad[oa]) (?:en|sobre|encima de"
        r"|encima del|al|hacia el|arriba del|arriba de) (?:el )?(?:puente|viaducto|acantilado|precipicio)\b"
        r"|\b(?:estoy|ando) en las vias\b",
    ),
    (
        "colgarme",
        r"\bahorcar(?:me|se)\b|\bme ahorco\b|\bme (?:voy a|quiero|pienso) (?:ahorcar|colgar)\b(?! (?:el|la"
        r"|de el|a el|a ella))|\b(?:voy a|quiero|pienso|ganas de) colgarme\b(?! (?:el|la))",
    ),
    # Hacerse daño, cortarse.
    (
        "me_sigo_cortando",
        r"\bme (?:he estado|sigo|estoy|vuelvo a estar) (?:cortando|haciendo dano|lastimando|quemando"
        r"|autolesionando)\b|\bme (?:corte|queme|hice dano|lastime|golpee|hago dano|corto|quemo|quemado"
        r"|cortado) <ww>a proposito\b",
    ),
    (
        "volvi_a_hacerme_dano",
        r"\b(?:me volvi a|volvi a|me he vuelto a|he vuelto a|me vuelvo a|vuelvo a) (?:hacer(?:me)? dano"
        r"|cortar(?:me)?|lastimar(?:me)?|autolesionar(?:me)?)\b(?! (?:el|la|en|al|jugando|trabajando))",
    ),
    (
        "cortarme",
        r"\bcortarme\b(?! (?:el|la|las|los|un|una|mi|del|al))|\bcortarme (?:las venas|los brazos|las munecas"
        r"|el cuello|la piel|las piernas)\b|\bme (?:corto|corte|cortare|voy a cortar|estoy cortando"
        r"|vuelvo a cortar|he cortado|sigo cortando) (?:las venas|los brazos|las munecas|el cuello|otra vez"
        r"|de nuevo|las piernas)\b|\bcortarme las venas\b",
    ),
    (
        "hacerme_dano",
        r"\b(?:hacerme|me voy a hacer|me quiero hacer|me hago|me estoy haciendo|me vuelvo a hacer"
        r"|hacer me) (?:dano|algo)\b(?! (?:en|al|con|jugando|trabajando|de comer|de cenar|bonito|rico"
        r"|de dinero|el|la|para))|\b(?:lastimarme|me lastimo|me voy a lastimar"
        r"|me estoy lastimando)\b(?! (?:el|la|en|al|jugando|trabajando))",
    ),
    # "quiero desaparecer para siempre".
    (
        "desaparecer",
        r"\bdesaparecer (?:para siempre|del mapa|de este mundo|del mundo|de la tierra)\b|\b(?:quiero"
        r"|quisiera|ojala pudiera|me gustaria|solo quiero|ganas de) <w>desaparecer\b(?! (?:de (?:su|vuestra"
        r"|esta|la) (?:lista|base|empresa)|de sus (?:registros|listas)))",
    ),
    # Despedidas y planes.
    (
        "despidiendo",
        r"\bme estoy despidiendo(?: de (?:todos|mi familia|mis hijos))?\b|\ba (?:mis"
        r"|mi) <fam_es> para despedirme\b|\bdespedirme de (?:mis|mi) <fam_es>\b",
    ),
    (
        "despedida",
        r"\b(?:me despedi|ya me despedi|me he despedido|ya me he despedido) de (?:mi familia|mis hijos|todos"
        r"|mi madre|mi padre|mi gente)\b|\b(?:adios|me despido) (?:para siempre|a todos|de todos|de todo"
        r"|del mundo|mundo cruel|mundo|de mi familia)\b|\besta es mi despedida\b"
        r"|\bdespedirme (?:para siempre|de todos|de mi familia|de mis hijos)\b",
    ),
    (
        "carta_de_despedida",
        r"\b(?:carta|cartas|nota|notas|mensaje|video) de despedida\b|\b(?:escribi|he escrito|deje|he dejado"
        r"|escribiendo|escrito|estoy escribiendo|dejo) (?:una |la |mi |las |unas )?(?:carta|cartas|nota"
        r"|notas) (?:para|a) (?:mis|mi) (?:hijos|hijas|familia|seres queridos|nietos|padres"
        r"|ninos)\b(?! (?:sobre|acerca|explicando|para que|para explicar|con))",
    ),
    (
        "esta_noche_es_la_noche",
        r"\besta noche es la noche\b|\bhoy es el dia (?:en )?(?:que|q) (?:me (?:muero|mato|voy)|acabo con"
        r"|termino con)\b",
    ),
    (
        "ya_no_voy_a_estar",
        r"\b(?:ya no|pronto no) (?:voy a estar|estare|voy a seguir) (?:aqui|aca|viv[oa]|en este mundo"
        r"|para (?:pagar|ver|cuando))\b|\bno (?:voy a estar|estare) viv[oa]\b|\bno (?:voy a estar"
        r"|estare) (?:aqui )?para pagar\b",
    ),
    (
        "cuando_leas_esto",
        r"\bcuando (?:lea|leas|lean|leais) (?:esto|este mensaje) (?:ya )?(?:no|estare|habre)\b",
    ),
    (
        "irme_de_este_mundo",
        r"\b(?:irme|me voy|me quiero ir|dejar|salir|marcharme|me ire|me iria) (?:de |a )?(?:este mundo"
        r"|esta vida)\b|\b(?:me quiero ir|irme|me voy) para siempre\b(?! (?:de (?:su|esta|este|la|el|vuestra"
        r"|vuestro|tu) |a (?:otro|otra)))",
    ),
    (
        "no_despertar",
        r"\bno quiero (?:volver a )?despertar(?:me)?\b|\b(?:no despertar|no despertarme"
        r"|no volver a despertar|dormir para siempre|dormirme para siempre|dormir y no despertar"
        r"|no despertar nunca|nunca despertar|no despertarme mas)\b",
    ),
    (
        "hacer_una_locura",
        r"\b(?:voy a|puedo|podria|estoy a punto de|antes de|ganas de) (?:hacer|cometer) (?:una locura"
        r"|una tonteria|algo malo|algo de lo que me arrepienta)\b",
    ),
)

# ---- HARM_TO_OTHERS ---------------------------------------------------------------------------

_HARM_TO_OTHERS_EN: _Table = (
    # "I'll kill you", "kill my ex", "murder the bailiff".
    (
        "kill_someone",
        r"\b(?:kill|kl|murder|strangle|stab|choke|slaughter|butcher|shank|smother|knife"
        r"|slit the throat of) <obj>\b",
    ),
    ("shoot_someone", r"\b(?:shoot|shot) <obj>\b"),
    # First person, then kill and a name: "i'm going to kill dave".
    (
        "i_will_kill_name",
        r"\b(?:i|ill|i will|i would|i am going to|going to|i want to|want to|i could|i shall|i swear i"
        r"|i am ready to|i am about to|i might) <w>(?:kill|murder|stab|strangle) (?!(?:the|it|this|that"
        r"|these|those|time|for|to|off|of|my ?self|me|all|a|an|some|two|with|in|at|on|by|from|over|up|down"
        r"|back|your|my|his|her|their|our|every|any|and|or|but|if|so|then|when|now|today|tonight|tomorrow"
        r"|what|which|who|thing|things|debt|credit|interest|fees|charges|account|card|plan|contract"
        r"|subscription|direct|payment|payments|process|agreement|loan|battery|phone|one|bird|birds|mood"
        r"|vibe|myself|is|was|are|am|be|you|u|him|her|them|bills|calls|texts|emails|letters|messages"
        r"|notifications|reminders|alerts|noise|lights|engine|plans|off|down|rest|pain|buzz|joke"
        r"|conversation)\b)[a-z]+\b",
    ),
    # Hurting someone: "i'll hurt you", "i will find you and hurt you", "going to hurt someone".
    (
        "hurt_someone",
        r"\b(?:i|ill|i will|i would|i am going to|going to|i want to|want to|i could|i swear i|i might"
        r"|i am about to|i am ready to|i shall) <w>(?:hurt|harm|beat|batter|bash|smash|punch|attack|torture"
        r"|beat up|run over|knock out|strangle|choke|slap|kick|headbutt|glass|maim|break) <obj>\b(?! (?:back"
        r"|up|off|with (?:a|the) (?:payment|cheque|call)))",
    ),
    (
        "find_you_and_hurt_you",
        r"\b(?:and|then|will|ill|going to) (?:hurt|kill|stab|shoot|murder|beat up|strangle|batter) (?:you"
        r"|him|her|them|<poss_p>)\b|\bi (?:will|am going to) find (?:you|where you)\b(?! (?:a|an|the|some|my"
        r"|it|that|this|later|when))",
    ),
    (
        "feel_like_killing_someone",
        r"\bfeel like (?:killing|hurting|stabbing|shooting|murdering|strangling) <obj>\b|\b(?:scared|afraid"
        r"|worried|frightened|terrified) (?:i will|i might|i am going to|of|that i will"
        r"|that i might) <w>(?:hurt|harm|kill|hurting|harming|killing) <obj>\b",
    ),
    (
        "hurt_people",
        r"\b(?:to|will|would|going to|want to|ready to|might|could) <w>(?:hurt|harm|kill|shoot|stab"
        r"|attack) (?:someone|somebody|some one|anyone|anybody|people|others|someone else|other people"
        r"|everyone|everybody)\b",
    ),
    (
        "someone_will_get_hurt",
        r"\b(?:someone|somebody|some one|people|anyone|you|someone else|your staff|your people"
        r"|one of you)(?: s| is| are| will| would| could| might)? (?:going to|will|could|might|would) (?:get"
        r"|be|end up) (?:hurt|killed|dead|shot|stabbed)\b",
    ),
    ("want_them_dead", r"\bwant (?:you|them|him|her|<poss_p>) (?:all )?dead\b"),
    (
        "you_are_dead",
        r"\byou (?:are|will be|would be|are going to be) (?:dead meat|a dead man|a dead woman"
        r"|going to be dead|going to die|all dead|so dead)\b",
    ),
    # Violence against a place: "burn your office down", "bomb the building".
    (
        "burn_the_office",
        r"\b(?:burn|blow up|bomb|shoot up|torch|set fire to|burn down|firebomb|petrol bomb|smash up) (?:your"
        r"|the|his|her|their|that) (?:office|offices|building|house|home|place|company|car|shop|branch"
        r"|headquarters|hq)\b",
    ),
    (
        "come_with_a_weapon",
        r"\b(?:come|coming|go|going|turn up|show up) (?:down |over |round )?(?:to|at) (?:your|the|his|her"
        r"|their) (?:office|offices|building|house|home|door|branch) (?:and|with) (?:a |my )?<w>(?:gun|knife"
        r"|kill|hurt|shoot|stab|smash|burn|blow|bat|axe|bomb|machete|crowbar|hammer)\b",
    ),
    (
        "know_where_you_live",
        r"(?<!not )\b(?:i know|i will find|i found|i have|i got|i can find|know) (?:out )?where (?:you|he"
        r"|she|they|your (?:boss|staff|manager|ceo|agents|workers|family|kids)) (?:live|lives|work|works"
        r"|sleep|sleeps)\b",
    ),
    # Violence spelled out: "break his legs", "punch you in the face", "use it on you", "watch your back".
    (
        "break_your_legs",
        r"\b(?:break|smash|kick|punch|cave|bash|beat|rip) (?:your|his|her|their|you) (?:face|faces|legs|leg"
        r"|neck|head|heads|teeth|jaw|skull|arms|knees|kneecaps)(?: in| off)?\b|\bbeat (?:the )?(?:shit|crap"
        r"|hell|life|living daylights) out of\b",
    ),
    (
        "punch_you_in_the_face",
        r"\b(?:punch|hit|slap|smack|kick|stab|shoot|headbutt) (?:you|him|her|them) in the (?:face|head"
        r"|throat|chest|neck|mouth|gut|stomach|teeth|balls)\b",
    ),
    (
        "use_it_on_you",
        r"\buse (?:it|them|this|that|the (?:knife|gun|bat|axe|hammer)) on (?:you|him|her|them"
        r"|<poss_p>)\b(?! (?:account|card))",
    ),
    (
        "hunt_you_down",
        r"\bhunt (?:you|him|her|them|<poss_p>) down\b|\bcome for (?:you|your family|your kids)\b",
    ),
    ("watch_your_back", r"\bwatch (?:your|his|her) back\b|\bsleep with one eye open\b"),
    ("name_on_it", r"\b(?:bullet|gun|knife|bat) (?:with|has) (?:your|his|her|their) name on it\b"),
)

_HARM_TO_OTHERS_ES: _Table = (
    # "voy a matar a", "te voy a matar", "los mato a todos".
    (
        "voy_a_matar",
        r"(?<!me )(?<!se )\b(?:voy a|vamos a|quiero|pienso|ganas de|juro que|te juro que|me dan ganas de"
        r"|podria|seria capaz de|ire a|tengo que|necesito) (?:matar|asesinar|apunalar|acuchillar|disparar"
        r"|balear|estrangular|matarte|matarlo|matarla|matarlos|matarlas|matarle|matarles|apunalarte"
        r"|apunalarlo|apunalarla|dispararle|dispararte|dispararles|pegarle un tiro|pegarte un tiro"
        r"|pegarles un tiro|meterle un tiro|reventarle|reventarte|asesinarte|asesinarlo|asesinarla"
        r"|matar a)\b(?! (?:el tiempo|la deuda|esta deuda|el rato|de risa|a trabajar|mi deuda|los intereses"
        r"|las llamadas|mis deudas|el hambre|la sed|el gusanillo|trabajar|estudiar|correr|pagar|por))",
    ),
    (
        "te_voy_a_matar",
        r"\b(?:te|lo|la|los|las|le|les|os) (?:matare|mataria|voy a matar|vamos a matar|quiero matar"
        r"|voy a reventar|voy a partir la cara|voy a romper la cara|voy a pegar un tiro|voy a meter un tiro"
        r"|voy a hacer dano|hare dano|haria dano|voy a apunalar|voy a clavar un cuchillo"
        r"|voy a dar una paliza|voy a disparar|voy a ahorcar|voy a estrangular|voy a asesinar)\b",
    ),
    (
        "te_mato",
        r"\bte (?:mato|reviento|parto la cara|rompo la cara|pego un tiro|meto un tiro|apunalo"
        r"|clavo un cuchillo|doy una paliza|disparo|estrangulo|ahorco)\b|\b(?:los|las) mato(?: a todos)?\b"
        r"|\bmato a (?:todos|alguien|cualquiera|quien|ese|esa)\b|\bmato al (?:que|primero|proximo)\b",
    ),
    (
        "matar_a_alguien",
        r"\bmatar(?:e|ia|emos)? a (?:alguien|todos|todo el mundo|cualquiera|mi|tu|su|ese|esa|esos|esas|uno"
        r"|una|la|el|los|las|quien|sus)\b(?! (?:trabajar|estudiar|correr|pagar))",
    ),
    # "le voy a hacer daño", "voy a lastimar a alguien", "alguien va a salir herido".
    (
        "hacer_dano_a_alguien",
        r"\b(?:voy a|quiero|pienso|podria|juro que|ganas de) (?:hacer(?:le|les|te|os)?|hacerle"
        r"|hacerles) dano\b|\bhacer(?:le|les)? dano a (?:alguien|alguno|otros|otra persona|todos|cualquiera"
        r"|ese|esa)\b|\ble voy a hacer dano\b",
    ),
    (
        "lastimar_a_alguien",
        r"\b(?:voy a|quiero|pienso|miedo de|miedo a|miedo|podria|ganas de|capaz de) (?:lastimar|herir|danar"
        r"|golpear|pegar|matar|apunalar) a (?:alguien|quien|mis|mi|su|tu|ese|esa|todos|cualquiera|la persona"
        r"|el que|los que|sus|tus)\b",
    ),
    (
        "alguien_saldra_herido",
        r"\b(?:alguien|alguno|uno de ustedes|alguno de ustedes|sus empleados|alguien de su empresa) (?:va a "
        r"|puede |podria )?(?:salir|acabar|terminar) (?:herido|muerto|mal|lastimado|en el hospital)\b",
    ),
    # Amenazas: "sé dónde vives", quemar la oficina, ir armado, una paliza, romper la cara.
    (
        "se_donde_vives",
        r"(?<!no )\bse (?:donde|en donde) (?:vives|vive|viven|vivis|trabajas|trabaja|trabajan|esta (?:su|tu"
        r"|vuestra) oficina|estan sus oficinas|esta tu casa)\b",
    ),
    (
        "quemar_la_oficina",
        r"\b(?:quemar|quemo|voy a quemar|incendiar|voy a incendiar|volar|voy a volar|poner una bomba en"
        r"|ir con un arma a|ir armado a|ir con una pistola a) (?:su|tu|vuestra|la|sus|esa) (?:oficina"
        r"|oficinas|casa|empresa|edificio|local|coche|sede)\b",
    ),
    (
        "ir_armado",
        r"\b(?:ir|voy|ire|me presento|aparecer|aparezco) (?:a|hasta|en) (?:su|tu|vuestra|la|sus) (?:oficina"
        r"|oficinas|casa|empresa|sede|local) (?:con|y) (?:un |una )?(?:arma|pistola|cuchillo|navaja|escopeta"
        r"|machete|bate|matar|mato|disparo|reviento|quemo|hacer dano)\b",
    ),
    (
        "paliza",
        r"\b(?:darle|darte|darles|pegarle|pegarte|pegarles|meterle|meterte|meterles|le doy|le pego|les doy"
        r"|les pego|te doy|te pego|te meto|le meto) (?:una |un )?(?:paliza|tiro|balazo|navajazo|punalada"
        r"|punetazo|hostia|ostia|tunda)\b|\bdar (?:una |un )?(?:paliza|balazo|navajazo|punalada) a\b",
    ),
    (
        "romper_la_cara",
        r"(?<!me )\b(?:romper|partir|reventar|romperle|partirle|reventarle|romperte|partirte|reventarte"
        r"|rompo|parto|reviento) (?:la cara|la cabeza|las piernas|el cuello|la boca|los dientes|la crisma"
        r"|el alma|la jeta|la madre)\b",
    ),
    (
        "verlos_muertos",
        r"\b(?:ver|verlos|verte|verla|verlo|verlas|quiero) (?:a (?:todos|ustedes) )?muert[oa]s\b"
        r"|\bverte muert[oa]\b",
    ),
)

# ---- The other concerns -------------------------------------------------------------------------

_ADDICTION_EN: _Table = (
    (
        "gambling",
        r"\b(?:gambling|gamble|gambled|gambler|gamblers|betting|bookies|bookmaker|bookmakers|slot machines"
        r"|fruit machines|online casino|casino|casinos|poker|roulette|scratch cards|scratchcards|bet365"
        r"|betfair|paddy power|sky bet|william hill|ladbrokes|online bets|sports bets|gamstop|gamcare)\b",
    ),
    ("addicted", r"\b(?:addicted|addiction|addictions|addict|addicts|hooked on)\b"),
    (
        "rehab",
        r"\b(?:rehab|detox|recovery programme|recovery program|12 step|twelve step|aa meetings?|na meetings?"
        r"|gamblers anonymous|alcoholics anonymous|narcotics anonymous|methadone|subutex|relapsed|relapsing"
        r"|sober|sobriety|clean for \w+ (?:days|weeks|months|years))\b",
    ),
    (
        "alcohol_drugs",
        r"\b(?:alcoholic|alcoholism|drinking problem|drink problem|problem with (?:drink|drinking|alcohol"
        r"|drugs|gambling)|drug problem|drug habit|on drugs|using drugs|drug addiction|heroin|cocaine|meth"
        r"|ketamine|drinking too much|drink too much|binge drinking|drugs)\b",
    ),
)
_ADDICTION_ES: _Table = (
    (
        "ludopatia",
        r"\b(?:ludopatia|ludopata|ludopatas|apuestas|apostar|apostando|aposte|apostado|casa de apuestas"
        r"|casas de apuestas|tragaperras|maquinitas|casino|casinos|bingo|juego (?:online|compulsivo"
        r"|patologico)|jugador compulsivo|jugadores anonimos|problema con el juego|problemas con el juego"
        r"|adicto al juego|adiccion al juego|me lo jugue|me lo gaste en el juego)\b",
    ),
    (
        "adiccion",
        r"\b(?:adiccion|adicciones|adicto|adicta|adictos|adictas|enganchad[oa] a)\b(?! de (?:intereses"
        r"|cargos|gastos|recargos|costes))",
    ),
    (
        "alcohol_drogas",
        r"\b(?:alcoholic[oa]|alcoholismo|alcoholicos anonimos|narcoticos anonimos|problema con (?:el alcohol"
        r"|la bebida|las drogas|la droga)|problemas con (?:el alcohol|la bebida|las drogas|la droga)"
        r"|drogadict[oa]|drogas|cocaina|heroina|bebo demasiado|bebe demasiado|desintoxicacion|desintoxicarme"
        r"|centro de rehabilitacion|rehabilitacion (?:de|por) (?:drogas|alcohol)|recaida|recai"
        r"|proyecto hombre|metadona)\b",
    ),
)

_ABUSE_EN: _Table = (
    (
        "partner_takes_money",
        r"\b(?:my|his|her) <abuser> (?:takes|took|has taken|keeps|kept|steals|stole|has stolen|controls"
        r"|controlled|spends|spent|empties|emptied|uses|used|has|had|ran up|took out|maxed out|maxes out"
        r"|will not give me|does not let me have|keeps taking|has been taking|cleared out|drained) <w>(?:my"
        r"|all my|all of my|every|our|all our) (?:money|card|cards|bank card|debit card|credit card|wages"
        r"|wage|benefits|pay|salary|pension|account|bank|finances|income|paycheck|savings|universal credit"
        r"|bank account)\b",
    ),
    (
        "takes_my_money",
        r"\b(?:he|she|they) (?:takes|took|has taken|keeps taking|steals|stole|controls|spends|empties"
        r"|drains) (?:all )?(?:my|all my) (?:money|card|wages|benefits|pay|salary|pension|savings|bank card"
        r"|universal credit)\b",
    ),
    (
        "controls_the_money",
        r"\b(?:he|she|they|partner|husband|wife|boyfriend|girlfriend|ex) (?:controls|controlled"
        r"|is controlling|has control of|has control over|takes control of) (?:the|my|our|all the|all my"
        r"|all of my|all our|every) (?:money|finances|bank|bank account|accounts|cards|income|wages|benefits"
        r"|penny)\b",
    ),
    (
        "wont_let_me",
        r"\b(?:he|she|they|my partner|my husband|my wife|my boyfriend|my girlfriend) (?:will not|does not"
        r"|would not|never) let me (?:have|see|access|use|work|leave|go out|touch|open|get|keep|talk"
        r"|speak)\b",
    ),
    (
        "coercion",
        r"\b(?:coercive|coercion|coerced|forced me to (?:sign|take|borrow|get|apply|hand|give)"
        r"|made me (?:sign|take out|borrow|apply|get a loan|get the loan)|pressured me (?:into|to) (?:sign"
        r"|take|borrow)|in my name without|took out (?:a |the |this )?(?:loan|card|credit card|debt"
        r"|phone contract|contract|account|loans|cards) in my name|used my name|used my identity"
        r"|stole my identity|financial abuse|economic abuse|financially abusive|financially abused"
        r"|financially controlling)\b",
    ),
    (
        "domestic_abuse",
        r"\b(?:domestic (?:abuse|violence)|abusive (?:partner|relationship|husband|wife|ex|boyfriend"
        r"|girlfriend|marriage|home|father|mother|dad|mum)|(?:women s|womens) (?:aid|refuge)|in a refuge"
        r"|refuge|safe house|restraining order|non molestation order|nonmolestation|protection order"
        r"|protective order|injunction against|fled from|fleeing|escaped from (?:him|her|my)|rape|raped"
        r"|sexual abuse|stalking me|stalker|abuser|my abuser|beaten by|abused by)\b",
    ),
    (
        "he_hits_me",
        r"\b(?:he|she|partner|husband|wife|boyfriend|girlfriend|ex|dad|father) (?:hits|hit|beats|beat|hurts"
        r"|hurt|punches|punched|kicks|kicked|chokes|choked|strangled|strangles|pushes|pushed|slapped|slaps"
        r"|threatens|threatened|abuses|abused|rapes|raped|controls|controlled|bullies"
        r"|bullied) me\b(?! (?:with (?:a )?(?:court|legal|bailiffs|debt collectors)))",
    ),
    (
        "afraid_of_him",
        r"\b(?:afraid|scared|frightened|terrified) of (?:him|her|my (?:partner|husband|wife|ex|boyfriend"
        r"|girlfriend|dad|father))\b",
    ),
    (
        "threatened_to_kill_me",
        r"\b(?:he|she|they|husband|wife|partner|ex|boyfriend|girlfriend|dad|father) (?:threatened|threatens"
        r"|tried|has tried|wants|wanted|said he would|said she would|said he will|said she will"
        r"|swore) (?:to )?kill me\b",
    ),
)
_ABUSE_ES: _Table = (
    (
        "violencia",
        r"\b(?:violencia (?:de genero|domestica|machista|familiar|economica|intrafamiliar)|maltrato"
        r"|maltratos|maltratador|maltratada|maltratado|me maltrata|me maltrataba|abuso (?:economico"
        r"|financiero|sexual)|malos tratos|orden de alejamiento|orden de proteccion|casa de acogida"
        r"|centro de acogida|me viola|me violo|me violaba|le tengo miedo|tengo miedo de (?:el|ella"
        r"|mi (?:pareja|marido|esposo|ex|novio|novia|mujer|padre|padrastro)))\b",
    ),
    (
        "me_pega",
        r"\b(?:me pega|me pegaba|me golpea|me golpeaba|me empuja|me empujaba|me da palizas|me daba palizas"
        r"|me ha pegado|me pego una paliza)\b",
    ),
    (
        "me_amenaza",
        r"\b(?:mi (?:pareja|marido|esposo|ex|novio|novia|mujer|padre)|el|ella) me (?:amenaza|amenazaba"
        r"|amenazo|ha amenazado)\b(?! con (?:embargar|embargo|demandar|demanda|juicio|abogados|denunciar"
        r"|llevarme a juicio))|\b(?:quiere|quieren|amenazo con|amenaza con|intento|va a) matarme\b",
    ),
    (
        "pareja_dinero",
        r"\b(?:mi|su) (?:pareja|marido|esposo|esposa|mujer|novio|novia|ex|expareja|ex pareja|exmarido"
        r"|ex marido|hijo|hija|padre|madre) (?:me quita|me quito|me ha quitado|se queda con|se quedaba con"
        r"|se quedo con|controla|me controla|me controlaba|me roba|me robo|me robaba|se gasta|se gasto"
        r"|se lleva|se llevaba) <w>(?:mi|el|todo el|todo mi|todos|la|mis|nuestro) ?(?:dinero|sueldo|nomina"
        r"|tarjeta|tarjetas|cuenta|cuentas|pension|paro|ayuda|ayudas|ingresos)\b",
    ),
    (
        "controla_el_dinero",
        r"\b(?:controla|me controla|controlaba|me controlaba) (?:el|mi|todo el|todo mi|nuestro) dinero\b"
        r"|\b(?:me quita|me quitaba|me roba|me robaba|se queda con|se quedaba con) (?:mi|el|todo el"
        r"|todo mi) (?:dinero|sueldo|nomina|tarjeta|pension|paro)\b|\bno me deja (?:trabajar|salir|tener|ver"
        r"|usar|tocar|acceder|abrir)\b",
    ),
    (
        "me_obligo_a_firmar",
        r"\bme (?:obligo|obliga|obligaba|forzo|forzaba|hizo|hace|presiono) (?:a )?(?:firmar|pedir|sacar"
        r"|solicitar|contratar) (?:el|un|los|una|la|unos|esos)? ?(?:prestamo|prestamos|credito|creditos"
        r"|tarjeta|tarjetas|contrato|deuda)?\b",
    ),
    (
        "a_mi_nombre",
        r"\b(?:a mi nombre sin|sin mi (?:consentimiento|permiso|conocimiento) a mi nombre|pidio (?:un"
        r"|el) prestamo a mi nombre|saco (?:un|el|la|una) (?:prestamo|tarjeta|credito) a mi nombre"
        r"|uso mi nombre|suplantacion de identidad|suplanto mi identidad)\b",
    ),
)

_ILLNESS_ANY: _Table = (
    # The same word in both languages.
    (
        "cancer",
        r"\b(?:cancer|metastasis|chemo|tumor|tumour|leucemia|leukemia|leukaemia|melanoma|carcinoma|ictus)\b",
    ),
)
_ILLNESS_EN: _Table = (
    (
        "hospital",
        r"\b(?:in|at|into|to|out of|discharged from|admitted to|admitted into|been in|stay in|staying in"
        r"|still in|back in|rushed to|rushed into|taken to) (?:the |a )?hospital\b|\bhospitali[sz]ed\b"
        r"|\bhospital (?:bed|stay|appointment|appointments|treatment|ward)\b|\bintensive care\b|\bicu\b"
        r"|\bhigh dependency\b",
    ),
    (
        "serious_treatment",
        r"\b(?:chemotherapy|radiotherapy|radiation therapy|radiation treatment|oncology|oncologist|lymphoma"
        r"|biopsy|mastectomy|terminally ill|terminal (?:illness|diagnosis|cancer|disease)|palliative|hospice"
        r"|end of life care|months to live|weeks to live|dialysis|transplant|heart attack|heart failure"
        r"|heart surgery|stroke|bypass|amputation|amputated|seizures|epilepsy|multiple sclerosis"
        r"|motor neurone|parkinsons|parkinson|alzheimers|dementia|kidney failure|liver failure|organ failure"
        r"|sepsis|coma|long covid|fibromyalgia|chronic (?:illness|pain|fatigue|condition)|diagnosed with"
        r"|surgery|surgeries)\b",
    ),
    (
        "operation",
        r"\b(?:had|having|have|need|needs|needed|after|recovering from|waiting for|major|my|an|his"
        r"|her) (?:an |a big |major |emergency )?operation\b(?! (?:on the|to collect))",
    ),
    (
        "very_ill",
        r"\b(?:i am|i have been|been|he is|she is|was|very|gravely|critically|chronically|terminally|badly"
        r"|quite) (?:very |really |seriously |so |quite |badly )?ill\b|\b(?:i am|i have been|been|he is"
        r"|she is|very|really|seriously|gravely|critically|chronically|terminally|so|badly) (?:very |really "
        r"|seriously |so |quite |badly )?(?:sick|unwell|poorly)\b(?! (?:of|and tired|to death|about"
        r"|with (?:worry|stress)|to my stomach))",
    ),
    (
        "off_sick",
        r"\b(?:off sick|signed off|sick leave|sick note|fit note|statutory sick pay|on the sick|sick pay"
        r"|too ill to work|too sick to work|medical leave)\b",
    ),
    (
        "serious_illness",
        r"\b(?:serious|long term|terminal|chronic|critical|severe|life limiting|life threatening|rare"
        r"|incurable) (?:illness|disease|condition|health condition)\b",
    ),
    (
        "disability",
        r"\b(?:i am disabled|disabled (?:son|daughter|child|husband|wife|partner|mum|mom|dad|person|people)"
        r"|disability (?:benefit|benefits|allowance|payments|living allowance)|my disability|a disability"
        r"|disabilities|wheelchair|pip)\b",
    ),
)
_ILLNESS_ES: _Table = (
    (
        "hospital",
        r"\b(?:en el hospital|en un hospital|al hospital|hospitalizad[oa]|estoy ingresad[oa]"
        r"|esta ingresad[oa]|estuve ingresad[oa]|sigo ingresad[oa]|ingresad[oa] en (?:el|un|la) (?:hospital"
        r"|clinica|uci|psiquiatrico)|me van a ingresar|urgencias|uci|cuidados intensivos|en la clinica)\b"
        r"|\b(?:me|lo|la) ingresaron\b(?! (?:el|la|los|las|dinero|[0-9]))",
    ),
    (
        "quimio",
        r"\b(?:quimio|quimioterapia|radioterapia|oncolog\w*|tumores|linfoma|biopsia|mastectomia"
        r"|enfermedad terminal|enferm[oa] terminal|cuidados paliativos|paliativos)\b",
    ),
    (
        "operacion",
        r"\b(?:me (?:van a |tienen que )?operar|operarme|me operan|me operaron|me han operado"
        r"|operad[oa] (?:de|del)|operacion quirurgica|cirugia|trasplante|dialisis|infarto|derrame cerebral"
        r"|embolia|ataque al corazon|insuficiencia (?:renal|cardiaca)|esclerosis|parkinson|alzheimer"
        r"|demencia|epilepsia|fibromialgia|discapacidad|minusvalia|incapacidad (?:permanente|temporal"
        r"|laboral)|baja medica|estoy de baja(?! por (?:maternidad|paternidad))|de baja por (?:enfermedad"
        r"|depresion|ansiedad|estres|una operacion|operacion|accidente|cancer|incapacidad|lesion|salud|covid"
        r"|prescripcion medica)|baja por enfermedad|me diagnosticaron|le diagnosticaron|diagnostico de"
        r"|covid persistente)\b",
    ),
    (
        "enfermo",
        r"\b(?:estoy|esta|estuve|sigo|ando|he estado|muy|gravemente|bastante) (?:muy |gravemente "
        r"|bastante )?(?:enferm[oa]|malit[oa])\b|\benfermedad (?:grave|cronica|terminal|rara|degenerativa)\b"
        r"|\bgrave(?:mente)? enferm[oa]\b",
    ),
)

_MENTAL_HEALTH_ANY: _Table = (("bipolar", r"\b(?:bipolar|anorexia|bulimia|psicosis|psychosis)\b"),)
_MENTAL_HEALTH_EN: _Table = (
    (
        "diagnosis",
        r"\b(?:depression|depressed|depressive|anxiety|anxious|panic attacks?|panic disorder"
        r"|nervous breakdown|mental breakdown|had a breakdown|having a breakdown|verge of a breakdown"
        r"|mental health|mentally ill|mental illness|schizophreni\w*|psychotic|ptsd|ocd|eating disorder"
        r"|personality disorder|bpd|psychiatrist|psychiatric|sectioned|crisis team|cmht|mental health team"
        r"|struggling mentally|my mental|mentally unwell|mentally i am)\b",
    ),
    (
        "treatment",
        r"(?<!debt )(?<!credit )(?<!financial )(?<!money )\b(?:therapist|therapy|counsell?or|counsell?ing"
        r"|antidepressants|anti depressants|sertraline|fluoxetine|citalopram|mirtazapine|lithium|diazepam"
        r"|propranolol)\b",
    ),
)
_MENTAL_HEALTH_ES: _Table = (
    (
        "diagnostico",
        r"\b(?:depresion|deprimid[oa]|ansiedad|ansios[oa]|ataques? de panico|ataques? de ansiedad"
        r"|crisis de ansiedad|crisis nerviosa|colapso nervioso|salud mental|enfermedad mental"
        r"|trastorno (?:bipolar|de ansiedad|mental|de la personalidad|obsesivo|alimentario|depresivo|limite"
        r"|de estres)|esquizofreni\w*|brote psicotico|tept|toc|me dio un bajon|tengo un bajon"
        r"|estoy en tratamiento psiquiatrico|crisis emocional)\b",
    ),
    (
        "tratamiento",
        r"\b(?:psiquiatra|psiquiatric[oa]|psicolog[oa]|terapia|terapeuta|antidepresivos|ansioliticos"
        r"|lorazepam|diazepam|orfidal|tranquilizantes)\b",
    ),
)

_CARER_EN: _Table = (
    (
        "carer",
        r"(?<!my )(?<!our )(?<!a )\b(?:carer|carers|caregiver|care giver|caregiving)\b|\bi am (?:a |her "
        r"|his |their |the |an unpaid |the main |the only |full time |a full time )carer\b",
    ),
    (
        "look_after",
        r"\b(?:look|looks|looking|looked|i care|caring|care|cares) (?:after|for) (?:my|our|his"
        r"|her) (?:own )?<ward>\b",
    ),
    ("full_time_care", r"\b(?:24 ?7|24 hour|round the clock|full time|constant) care\b"),
)
_CARER_ES: _Table = (
    (
        "cuido",
        r"\b(?:cuido|cuidar|cuidando|cuide|cuidaba|tengo que cuidar|me encargo|me ocupo|atiendo"
        r"|me hago cargo|estoy cuidando) (?:de |a )?(?:mi|mis|su|sus|nuestra|nuestro) <ward_es>\b",
    ),
    (
        "cuidador",
        r"\b(?:cuidador|cuidadora|cuidadores|cuidadoras|soy su cuidador[a]?|cuidador principal"
        r"|ley de dependencia|grado de dependencia|persona dependiente|es dependiente|son dependientes"
        r"|gran dependiente|tengo a mi cargo a|a cargo de mi <ward_es>)\b",
    ),
)

_READING_EN: _Table = (
    (
        "cant_read_well",
        r"\b(?:can not|could not|do not|not able to|never learned to|never learnt to|unable to) (?:read"
        r"|write|spell)(?: or (?:read|write|spell))? ?(?:very |too |that |so |really )?(?:well|good|properly"
        r"|great|at all)\b|\bcan not read or write\b|\bcan not read\b(?! (?:your|the|this|that|it|them|these"
        r"|those|my|a|an|what))",
    ),
    (
        "struggle_to_read",
        r"\b(?:not good|no good|bad|terrible|poor|struggle|struggling|difficulty|difficulties|trouble"
        r"|problems|hard) (?:at|with|to|for me to|reading|when) (?:read|reading|spelling|writing"
        r"|understand(?:ing)? letters)\b|\breading is (?:hard|difficult)\b",
    ),
    (
        "dyslexia",
        r"\b(?:dyslexi\w*|dyslexic|learning (?:difficulty|difficulties|disability|disabilities)|illiterate"
        r"|literacy)\b",
    ),
    (
        "language",
        r"\b(?:do not|can not|not|barely|hardly) (?:understand|speak|read|know) (?:much |good |very good "
        r"|very much |well )?(?:english|spanish|the language)\b|\b(?:english|spanish) (?:is not"
        r"|isnt) my (?:first |native |main )?language\b|\bmy english (?:is )?(?:not good|not very good|bad"
        r"|poor|not great|very bad|limited|very poor|is poor|not so good)\b|\bno english\b"
        r"|\bno speak english\b",
    ),
    (
        "explain_to_me",
        r"\b(?:need|want|would like) (?:someone|somebody|a person|a human|a real person|an adviser"
        r"|an advisor|someone who) (?:to )?(?:explain|help me understand|talk me through"
        r"|go through it with me|read it to me|read this to me|read them to me)\b|\bexplain (?:it|this|that"
        r"|everything) to me (?:in person|on the phone|by phone|slowly|simply|in simple (?:words|terms"
        r"|english))\b|\bin (?:simple|simpler|easy|easier|plain) (?:words|english|language|terms)\b"
        r"|\bread (?:it|this|them|the letter|the letters|the messages) to me\b",
    ),
    (
        "sight",
        r"\b(?:blind|partially sighted|visually impaired|poor eyesight|bad eyesight|can not see (?:well"
        r"|the screen|the text|properly|very well)|sight problems|losing my sight)\b",
    ),
)
_READING_ES: _Table = (
    (
        "no_se_leer",
        r"\bno (?:se|sabe|sabemos) (?:leer|escribir)\b|\bno (?:puedo|consigo|logro) (?:leer"
        r"|escribir) (?:bien|muy bien|casi nada|del todo)\b|\bno leo (?:muy )?bien\b|\bleo (?:muy )?mal\b"
        r"|\bme cuesta (?:mucho )?(?:leer|entender lo que leo|escribir)\b|\bdificultad(?:es)? (?:para|de"
        r"|con la|con) (?:lectura|leer|entender)\b",
    ),
    (
        "no_entiendo_el_idioma",
        r"\bno (?:entiendo|hablo|leo|comprendo) (?:bien |mucho |muy bien )?(?:el )?(?:ingles|espanol"
        r"|castellano|el idioma)\b|\bmi (?:espanol|ingles|castellano) no es (?:bueno|muy bueno)\b"
        r"|\bno entiendo (?:bien )?(?:lo que (?:leo|pone|dice|dicen|escriben|me escriben|me mandan|ponen)"
        r"|(?:los|sus|estos|tus|vuestros) (?:mensajes|cartas|textos|correos))\b",
    ),
    (
        "dislexia",
        r"\b(?:dislexia|dislexic[oa]|analfabet[oa]|no fui a la escuela|no fui al colegio"
        r"|dificultades de aprendizaje|discapacidad intelectual)\b",
    ),
    (
        "que_me_lo_expliquen",
        r"\b(?:alguien que me (?:lo )?explique|que alguien me (?:lo )?explique"
        r"|necesito que me (?:lo )?expliquen|explicarmelo (?:bien|despacio|por telefono|en persona)"
        r"|me lo (?:pueden|puede|podrian) explicar (?:por telefono|en persona|despacio|con palabras)"
        r"|palabras (?:sencillas|simples|faciles)|que me lo lean|me lo lea alguien)\b",
    ),
    (
        "vista",
        r"\b(?:veo (?:muy )?mal|no veo bien|soy ciego|soy ciega|problemas de vista|discapacidad visual"
        r"|casi no veo)\b",
    ),
)

_BEREAVEMENT_ANY: _Table = (("funeral", r"\bfunerale?s?\b"),)
_BEREAVEMENT_EN: _Table = (
    (
        "family_died",
        r"\b(?:my|our) (?:late |dear |beloved |darling )?<fam> (?:has |have |just |recently |sadly "
        r"|suddenly |unexpectedly )?(?:died|passed away|passed on|is dead|was killed|got killed|has died"
        r"|lost (?:his|her|their) (?:life|battle|fight)|is no longer with us|passed(?! (?:the|his|her|their"
        r"|my|an|a|exam|test|it|me|by|through|over|out|up|on the)))\b",
    ),
    (
        "lost_family",
        r"\b(?:lost|losing|lose) (?:my|our) <fam>\b(?! s\b)(?! (?:s|job|card|phone|number|house|home|money"
        r"|address))",
    ),
    (
        "pronoun_died",
        r"\b(?:he|she|they) (?:has |have |just |sadly )?(?:died|passed away|passed on|is dead|was killed"
        r"|is no longer with us)\b",
    ),
    (
        "since_the_death",
        r"\b(?:death|loss|passing|burial|cremation) of (?:my|our) <fam>\b|\bsince (?:my|our) <fam> (?:died"
        r"|passed|death)\b|\bsince (?:he|she) (?:died|passed)\b|\b<fam> s (?:death|funeral|passing)\b"
        r"|\bmy late <fam>\b",
    ),
    (
        "bereaved",
        r"\b(?:bereaved|bereavement|widow|widowed|widower|grieving|grief|mourning|deceased|probate"
        r"|death certificate|executor|next of kin|rest in peace|condolences|miscarriage|miscarried|stillborn"
        r"|stillbirth|lost (?:the|our|my) baby|cremation|burial|buried my)\b(?<!good grief)|\brip\b(?! off)",
    ),
)
_BEREAVEMENT_ES: _Table = (
    (
        "fallecio",
        r"\b(?:fallecio|fallecida|fallecido|fallecidos|fallecimiento|ha fallecido|han fallecido|fallecer"
        r"|defuncion|certificado de defuncion|difunt[oa]|descanse en paz|en paz descanse|viuda|viudo|enviude"
        r"|me quede viud[oa]|velorio|velatorio|entierro|luto|de duelo|el duelo|tanatorio|aborto espontaneo"
        r"|perdi (?:el|al|a mi) bebe)\b",
    ),
    (
        "murio_mi",
        r"\b(?:murio|se murio|se me murio|ha muerto|se ha muerto|se nos murio|perdi|perdimos|hemos perdido"
        r"|he perdido|acabo de perder) (?:a )?(?:mi|mis|nuestro|nuestra|nuestros|nuestras) <fam_es>\b"
        r"|\b(?:mi|mis) <fam_es> (?:murio|fallecio|ha muerto|se murio|esta muert[oa]|ha fallecido|murieron"
        r"|fallecieron)\b|\bmuerte de (?:mi|mis) <fam_es>\b|\bdesde que (?:murio|fallecio|se murio"
        r"|se fue) (?:mi|mis) <fam_es>\b",
    ),
)

# ---- Distress: idioms and milder despair, never a cheerful answer -----------------------------------

_DISTRESS_EN: _Table = (
    # "this debt is killing me", "you're killing me", "my wife will kill me".
    ("killing_me", r"\bkill(?:ing|s|ed)? me\b"),
    (
        "dying_of",
        r"\b(?:dying|die|died|dead|going to die) (?:of|from|with) (?:embarrassment|shame|stress|worry"
        r"|worrying|anxiety|fear|hunger|starvation|a heart attack|shock)\b|\bdying (?:here|inside)\b",
    ),
    (
        "to_death",
        r"\b(?:stressed|worried|scared|terrified|frightened|petrified|sick|anxious|stressing|worrying"
        r"|stressed out) (?:to death|sick|out of my mind)\b",
    ),
    (
        "drowning",
        r"\bdrowning\b|\b(?:going|sinking|gone) under\b|\bunder ?water\b|\bup to my (?:neck|eyes|eyeballs)\b"
        r"|\bsinking\b",
    ),
    (
        "cant_take_it",
        r"\bcan not (?:take|stand|bear|handle|cope with|deal with) (?:it|this|any ?more|much more|no more"
        r"|the stress|the pressure|the calls|the worry|much longer|it any ?more|this any ?more)\b"
        r"|\bcan not cope\b|\bnot coping\b|\bcan not (?:go on|carry on) (?:like this|any ?more)\b"
        r"|\bcan not do this (?:any ?more|no more|any longer)\b|\bcan not live like this\b"
        r"|\bcan not keep (?:going|doing this)\b",
    ),
    (
        "end_of_my_rope",
        r"\b(?:end of my (?:rope|tether)|wits end|breaking point|at my limit|rock bottom|falling apart"
        r"|fall apart|at the end of my)\b",
    ),
    (
        "give_up",
        r"\bi (?:give up|have given up|am giving up|am done|am finished)\b(?! (?:smoking|my (?:job|car|flat"
        r"|house)|work|at|by|for the day|with work|in|for now|for today))",
    ),
    (
        "despair",
        r"\b(?:hopeless|helpless|worthless|desperate|desperation|despair|no hope|lost all hope|no way out"
        r"|trapped|overwhelmed|panicking|terrified|crying|in tears|sobbing|losing my mind|going crazy"
        r"|going insane|nervous wreck|i am broken|heartbroken|devastated|miserable|so stressed"
        r"|really stressed|very stressed|stressed out|i hate myself|hate my life|ruined my life"
        r"|my life is ruined|life is ruined|so ashamed|ashamed|humiliated|i am scared|so scared"
        r"|really scared|struggling so much|struggling to cope|no one cares|nobody cares|alone in this"
        r"|all alone|so alone|lonely|i am lost|do not know what to do|at a loss|tired of everything"
        r"|tired of it all|sick of my life|done with everything|burden|dead weight|no point any ?more"
        r"|no point in anything|no point trying|point in anything|point of anything|want it all to stop"
        r"|want everything to stop|waste of space|sorry for everything)\b",
    ),
    ("when_i_am_gone", r"\bwhen i am (?:dead|gone)\b"),
)
_DISTRESS_ES: _Table = (
    (
        "no_puedo_mas",
        r"\b(?:no puedo|ya no puedo|no aguanto|ya no aguanto|no soporto|no lo soporto|no lo aguanto"
        r"|no puedo con) mas\b|\b(?:no aguanto|ya no aguanto|no lo soporto|no lo aguanto|no soporto esto"
        r"|no aguanto esto|no puedo con esto|no puedo con todo)\b",
    ),
    (
        "me_mata",
        r"\bme (?:mata|matan|esta matando|estan matando|estas matando|estais matando|va a matar|van a matar"
        r"|mataron|matas|mato|matara|acaba|esta acabando|estan acabando)\b|\bme tiene(?:n)? (?:frit[oa]"
        r"|muert[oa]|loc[oa]|amargad[oa])\b|\bva a acabar conmigo\b|\bacabar conmigo\b",
    ),
    (
        "me_muero",
        r"(?<!si )(?<!cuando )\bme (?:muero|estoy muriendo|voy a morir|moria)\b|\bmuert[oa] de (?:miedo"
        r"|verguenza|hambre|preocupacion|pena|angustia)\b|\bsiento que me muero\b",
    ),
    (
        "ahogado",
        r"\b(?:ahogad[oa]|me ahogo|me estoy ahogando|ahogandome|con el agua al cuello|con la soga al cuello"
        r"|hasta el cuello)\b",
    ),
    (
        "desesperado",
        r"\b(?:desesperad[oa]|desesperacion|angustiad[oa]|angustia|agobiad[oa]|agobio|al limite|en el limite"
        r"|hundid[oa]|destrozad[oa]|derrumbad[oa]|no veo salida|no hay salida|sin salida|no tengo salida"
        r"|no se que hacer|no se que voy a hacer|estoy llorando|no paro de llorar|llorando|no duermo"
        r"|no puedo dormir|sin dormir|me voy a volver loc[oa]|me estoy volviendo loc[oa]|estoy perdid[oa]"
        r"|me rindo|estoy hart[oa]|no puedo seguir asi|no quiero seguir asi|no puedo vivir asi"
        r"|no quiero vivir asi|no puedo seguir|estoy sol[oa]|me siento sol[oa]|me da verguenza|que verguenza"
        r"|verguenza|avergonzad[oa]|soy una carga|una carga para|estoy en la ruina|arruinad[oa]"
        r"|mi vida es un infierno|esto es un infierno|no tengo esperanza|sin esperanza|estoy fatal"
        r"|estoy muy mal|lo estoy pasando (?:muy )?mal|estresad[oa]|estoy de los nervios|me da panico"
        r"|harto de mi vida|harta de mi vida|odio mi vida|me odio|no puedo vivir con esta"
        r"|con esta deuda no vivo|me quita el sueno|me quita la vida|no tiene sentido nada"
        r"|ya nada tiene sentido|nada tiene sentido|no le encuentro sentido a nada|no tengo ganas de nada"
        r"|sin ganas de nada|no sirvo para nada|ya no tengo fuerzas|no tengo fuerzas|me doy por vencid[oa]"
        r"|perdon por todo)\b",
    ),
    (
        "mato_a_trabajar",
        r"\b(?:me mato|matarme|me estoy matando|me voy a matar|me mataria) (?:a |de )?(?:trabajar|trabajando"
        r"|estudiar|estudiando|currar|curro)\b",
    ),
)


# --------------------------------------------------------------------------------------------
# Compiled rules
# --------------------------------------------------------------------------------------------


# A pattern is only tried on a text holding one of the literals a match of it can begin with
# ("want", "i am", "suicid"...): most of the ~260 patterns are skipped for most texts, which keeps
# a long message fast. ``_leads`` reads the subset of regex syntax the lexicon uses and answers
# None (always try the pattern) whenever it is not sure.

#: (literal, anchored): a match begins with ``literal``; anchored when it begins a word.
_Lead = tuple[str, bool]
_PREFIX = 8  # the longest word prefix indexed for anchored leads
_ZERO_WIDTH = re.compile(r"\\b|\(\?<?[=!]")
_PLAIN = re.compile(r"[a-z0-9 ]")


def _closing(source: str, start: int) -> int:
    """The index just past the group opening at ``start``."""
    depth, index = 0, start
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            index = source.index("]", index + 1) + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise ValueError(source)


def _branches(source: str) -> list[str]:
    """``source`` split at its top-level ``|``."""
    parts, depth, start, index = [], 0, 0, 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            index = source.index("]", index + 1) + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(source[start:index])
            start = index + 1
        index += 1
    parts.append(source[start:])
    return parts


def _leads(source: str, anchored: bool = False) -> frozenset[_Lead] | None:
    """Every literal a match of ``source`` can begin with, or None when that cannot be told."""
    leads: set[_Lead] = set()
    for branch in _branches(source):
        found = _branch_leads(branch, anchored)
        if found is None:
            return None
        leads |= found
    return frozenset(leads)


def _branch_leads(branch: str, anchored: bool) -> frozenset[_Lead] | None:
    index = 0
    while (skip := _ZERO_WIDTH.match(branch, index)) is not None:
        if skip.group() == "\\b":
            anchored, index = True, skip.end()
        else:
            index = _closing(branch, index)
    if branch.startswith("(?:", index):
        end = _closing(branch, index)
        if end < len(branch) and branch[end] in "?*{":
            return None
        return _leads(branch[index + 3 : end - 1], anchored)
    literal = ""
    while index < len(branch) and _PLAIN.match(branch[index]):
        literal += branch[index]
        index += 1
    if index < len(branch) and branch[index] in "?*{":
        literal = literal[:-1]
    return frozenset({(literal, anchored)}) if literal.strip() else None


@dataclass(frozen=True)
class _Rule:
    name: str  # "<family>.<language>.<pattern>": what ``matched`` reports
    concern: Concern | None  # None for distress
    language: str | None
    regex: re.Pattern[str]
    # What a text must hold for the pattern to be tried (see ``_leads``); ``always`` when unknown.
    always: bool
    starts: frozenset[str]  # a word begins with one of these (cut to ``_PREFIX`` letters)
    phrases: tuple[str, ...]  # or the text holds one of these
    fragments: tuple[str, ...]

    def may_match(self, text: str, prefixes: set[str]) -> bool:
        return (
            self.always
            or not self.starts.isdisjoint(prefixes)
            or any(phrase in text for phrase in self.phrases)
            or any(fragment in text for fragment in self.fragments)
        )


def _rule(name: str, concern: Concern | None, language: str | None, source: str) -> _Rule:
    regex = _compile(source)
    leads = _leads(regex.pattern) or frozenset()
    return _Rule(
        name=name,
        concern=concern,
        language=language,
        regex=regex,
        always=not leads,
        starts=frozenset(literal[:_PREFIX] for literal, anchored in leads if anchored and " " not in literal),
        phrases=tuple(sorted(literal for literal, anchored in leads if anchored and " " in literal)),
        fragments=tuple(sorted(literal for literal, anchored in leads if not anchored)),
    )


def _rules(family: str, concern: Concern | None, language: str | None, table: _Table) -> list[_Rule]:
    tag = language or "any"
    return [_rule(f"{family}.{tag}.{name}", concern, language, source) for name, source in table]


_HARMLESS: tuple[_Rule, ...] = tuple(
    _rule(f"harmless.{name}", None, None, source)
    for table in (_HARMLESS_EN, _HARMLESS_ES)
    for name, source in table
)

_CONCERN_TABLES: tuple[tuple[Concern, str | None, _Table], ...] = (
    (Concern.SELF_HARM, "en", _SELF_HARM_EN),
    (Concern.SELF_HARM, "es", _SELF_HARM_ES),
    (Concern.HARM_TO_OTHERS, "en", _HARM_TO_OTHERS_EN),
    (Concern.HARM_TO_OTHERS, "es", _HARM_TO_OTHERS_ES),
    (Concern.ADDICTION, "en", _ADDICTION_EN),
    (Concern.ADDICTION, "es", _ADDICTION_ES),
    (Concern.ABUSE, "en", _ABUSE_EN),
    (Concern.ABUSE, "es", _ABUSE_ES),
    (Concern.ILLNESS, None, _ILLNESS_ANY),
    (Concern.ILLNESS, "en", _ILLNESS_EN),
    (Concern.ILLNESS, "es", _ILLNESS_ES),
    (Concern.MENTAL_HEALTH, None, _MENTAL_HEALTH_ANY),
    (Concern.MENTAL_HEALTH, "en", _MENTAL_HEALTH_EN),
    (Concern.MENTAL_HEALTH, "es", _MENTAL_HEALTH_ES),
    (Concern.CARER, "en", _CARER_EN),
    (Concern.CARER, "es", _CARER_ES),
    (Concern.READING, "en", _READING_EN),
    (Concern.READING, "es", _READING_ES),
    (Concern.BEREAVEMENT, None, _BEREAVEMENT_ANY),
    (Concern.BEREAVEMENT, "en", _BEREAVEMENT_EN),
    (Concern.BEREAVEMENT, "es", _BEREAVEMENT_ES),
)

_RULES: tuple[_Rule, ...] = tuple(
    rule
    for concern, language, table in _CONCERN_TABLES
    for rule in _rules(concern.value, concern, language, table)
) + tuple(_rules("distress", None, "en", _DISTRESS_EN) + _rules("distress", None, "es", _DISTRESS_ES))

#: Every name ``Screening.matched`` can hold.
PATTERN_NAMES: frozenset[str] = frozenset(rule.name for rule in _RULES)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: A few words that tell the languages apart when only a shared word ("cancer") matched.
_EN_WORDS = _words(
    "the i you my is to and it have has in of am do not for with this"
    " your please what how can was she will would just been are they at be"
)
_ES_WORDS = _words(
    "el la de que y en los las mi es por con para una un lo se tengo"
    " estoy quiero pero mas muy esta su usted yo del al ha fue tiene"
)


def _guess_language(text: str) -> str | None:
    words = text.split()
    english = sum(word in _EN_WORDS for word in words)
    spanish = sum(word in _ES_WORDS for word in words)
    if english == spanish:
        return None
    return "en" if english > spanish else "es"


def _language(hits: list[_Rule], normal: str) -> str | None:
    """The language of what matched: of the crisis signs first; the words of the text break ties
    (and decide when only a word both languages share matched)."""
    crisis = [rule for rule in hits if rule.concern in CRISIS and rule.language]
    counts: dict[str, int] = {}
    for rule in crisis or hits:
        if rule.language:
            counts[rule.language] = counts.get(rule.language, 0) + 1
    guess = _guess_language(normal)
    if not counts:
        return guess
    best = max(counts.values())
    leaders = [language for language, count in counts.items() if count == best]
    return guess if len(leaders) > 1 and guess in leaders else leaders[0]


def screen(text: str) -> Screening:
    """Screen one inbound text (see the module docstring)."""
    normal = normalise(text)
    if not normal:
        return Screening()
    prefixes = {word[:size] for word in set(normal.split()) for size in range(1, min(len(word), _PREFIX) + 1)}
    for harmless in _HARMLESS:
        if harmless.may_match(normal, prefixes):
            normal = harmless.regex.sub(" ~ ", normal)
    hits = [rule for rule in _RULES if rule.may_match(normal, prefixes) and rule.regex.search(normal)]
    if not hits:
        return Screening()
    concerns = frozenset(rule.concern for rule in hits if rule.concern is not None)
    return Screening(
        concerns=concerns,
        distress=any(rule.concern is None for rule in hits),
        language=_language(hits, normal),
        matched=tuple(dict.fromkeys(rule.name for rule in hits)),
    )
