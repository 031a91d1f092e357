"""The safety screen: crisis signs in English and Spanish are never missed, ordinary debt messages
and idioms are never taken for one, and no spelling, casing, accent or emoji changes the answer."""

from __future__ import annotations

import random
import re
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.care.screen as screen_module
from bot.care.screen import CRISIS, PATTERN_NAMES, Concern, Screening, normalise, screen

# --------------------------------------------------------------------------------------------
# Crisis: self-harm and threats to others, as people write them
# --------------------------------------------------------------------------------------------

CRISIS_EN = [
    # Direct
    "I want to die",
    "honestly i just want to die, i cant do this",
    "i wanna die lol no im serious",
    "want 2 die",
    "I WANT TO DIE",
    "im going to kill myself tonight",
    "i'm gonna kil myself",
    "kms",
    "tbh i might just kms",
    "I'M GOING TO KILL MYSELF",
    "i want to unalive myself",
    "I've been thinking about suicide a lot",
    "feeling suicidal again",
    "sucide is the only way out",
    "i keep thinking about suicde",
    "i deserve to die",
    "I wish I was dead",
    "i'm ready to die",
    # Indirect
    "I dont want to live anymore",
    "i dont wanna be alive anymore",
    "I don't want to be here anymore",
    "everyone would be better off without me",
    "my family would be better off if I was dead",
    "I'd be better off dead",
    "better off dead tbh",
    "the kids will be fine without me",
    "nobody would miss me if i was gone",
    "no one would even notice if i died",
    "there's no reason to live anymore",
    "i have nothing left to live for",
    "what's the point of living like this",
    "I can't go on living like this",
    "i'm done with life",
    "im so tired of living",
    "life isn't worth living",
    "I've lost the will to live",
    "i'd rather be dead than live like this",
    "i'd rather die than deal with this debt",
    "i hope i dont wake up tomorrow",
    "i just want to go to sleep and never wake up",
    "just want to disappear forever",
    "I'm a burden, they'd be happier without me",
    "by the time you read this i'll be gone",
    "I won't be around much longer to pay anything",
    # Ending it
    "I'm going to end it all",
    "thinking of ending my life",
    "im just gonna end it",
    "i'm ending things tonight",
    "i want to take my own life",
    # Self-harm
    "I've been self-harming again",
    "i cut myself last night",
    "i keep hurting myself",
    "started cutting again",
    # Means and plans
    "I have the pills ready",
    "took all my pills, sorry",
    "i have enough tablets saved up",
    "i bought a rope today",
    "got the gun out of the cupboard",
    "im standing on the bridge",
    "im gonna jump off a bridge",
    "gonna step in front of a train",
    "i'm going to overdose",
    "i could just top myself",
    "tonight is the night",
    "I wrote my note",
    "wrote a note for my family, sorry",
    "this is goodbye for good",
    "tell my kids i love them. goodbye forever",
    "been googling how many paracetamol it takes",
    # Harm to others
    "I'll kill you",
    "if you ring me again I will kill you",
    "im going to kill my ex",
    "i swear i'll stab the next bailiff who comes round",
    "I'm going to hurt someone",
    "gonna shoot the guy who keeps calling me",
    "i will find where you live",
    "someone is going to get hurt",
    "I'm going to burn your office down",
    "i know where you live",
    "I want to murder my husband",
    "if that bailiff comes back i'll break his legs",
    "i'm coming to your office with a knife",
    "you'll be dead meat",
    "i could kill him for what he did",
    "gonna hurt my wife",
    "KILL YOU ALL",
]

CRISIS_ES = [
    # Directo
    "me quiero morir",
    "quiero morirme ya",
    "kiero morir",
    "ME QUIERO MORIR",
    "me voy a matar",
    "me kiero matar",
    "estoy pensando en suicidarme",
    "me voy a suicidar esta noche",
    "voy a quitarme la vida",
    "he pensado en quitarme la vida",
    "tengo ganas de morir",
    "solo quiero morirme",
    "pienso en el suicidio cada día",
    "tengo pensamientos suicidas",
    "prefiero estar muerto",
    "mejor muerta que así",
    "ojalá me muera mientras duermo",
    # Indirecto
    "ya no quiero vivir",
    "no kiero vivir mas",
    "no quiero seguir viviendo",
    "no quiero seguir",
    "ya no quiero estar en este mundo",
    "mi familia estaría mejor sin mí",
    "todos estarian mejor sin mi",
    "sería mejor para todos si me muero",
    "nadie me echaría de menos",
    "nadie me extrañaria",
    "a nadie le importa si me muero",
    "no vale la pena vivir",
    "la vida no tiene sentido",
    "no tengo razones para vivir",
    "no tengo por qué seguir viviendo",
    "estoy cansada de vivir",
    "ya no puedo más con la vida",
    "quiero dormir y no despertar",
    "no quiero despertar mañana",
    "me quiero ir de este mundo",
    "quiero desaparecer para siempre",
    "ya no voy a estar aquí para pagar",
    "cuando lean esto ya no estaré",
    # Acabar con todo
    "voy a acabar con todo",
    "quiero acabar con mi vida",
    "no aguanto más, me voy a matar",
    "voy a hacer una locura",
    # Autolesión
    "tengo ganas de hacerme daño",
    "me corto los brazos otra vez",
    "quiero cortarme",
    "me volví a hacer daño",
    # Medios y planes
    "ya tengo las pastillas",
    "tengo todas las pastillas preparadas",
    "me voy a tomar todas las pastillas",
    "me tomé un bote de pastillas",
    "compré una cuerda",
    "quiero ahorcarme",
    "tengo un arma en casa",
    "me voy a tirar del puente",
    "estoy en el puente",
    "me voy a tirar a las vías del tren",
    "esta noche es la noche",
    "escribí una carta para mis hijos",
    "les dejé una carta de despedida",
    "adiós para siempre",
    "me despido de todos, perdón por todo",
    # Daño a otros
    "te voy a matar",
    "voy a matar a mi ex",
    "los mato a todos",
    "le voy a hacer daño a mi marido",
    "voy a ir a su oficina con una pistola",
    "sé dónde vives",
    "si me vuelven a llamar voy a matar a alguien",
    "alguien va a salir herido",
    "le voy a pegar un tiro",
    "te voy a partir la cara",
    "voy a quemar su oficina",
    "lo voy a matar cuando lo vea",
    "TE MATO",
    "me dan ganas de matar a alguien",
    "voy a apuñalar al cobrador",
]

# --------------------------------------------------------------------------------------------
# Not crisis: ordinary debt conversation, idioms, harmless figures of speech
# --------------------------------------------------------------------------------------------

NOT_CRISIS_EN = [
    "hi",
    "hello?",
    "how much do I owe",
    "can I pay 50 a month",
    "stop texting me",
    "STOP",
    "stop the late fees",
    "wrong number",
    "I lost my job",
    "kill the direct debit",
    "can you kill the interest?",
    "cancel it",
    "who is this",
    "is this a scam",
    "I already paid",
    "I want to settle",
    "I want to end the agreement",
    "I want to end my contract early",
    "I want to end it today by paying in full",
    "can I set up a payment plan",
    "what happens if I don't pay",
    "the direct debit bounced",
    "I get paid on the 28th",
    "I'll pay on friday",
    "so I'll call you tomorrow",
    "please stop calling",
    "what's my balance",
    "i need more time",
    "can you freeze the interest",
    "can you send me a breakdown of the charges",
    "shoot me an email with the details",
    "I'll shoot you a text when I've paid",
    "it won't kill you to wait a week",
    "this is killing my credit score",
    "I've been cutting back on everything to pay this",
    "can I take my life savings out to pay",
    "I have a bridging loan as well",
    "I'll jump on a call later",
    "I won't be around tomorrow, call me monday",
    "I won't be here next week, I'm on holiday",
    "I don't want to live in this flat anymore, can I change my address",
    "killing time till my break lol",
    "I killed it at my interview, start monday!",
    "I sussed out the problem with the app",
    "I'd murder a curry right now",
    "the battery on my phone is about to die",
    "my laptop died so I couldn't pay online",
    "it's a dead loss",
    "no one would lend me money",
    "I've been signed off sick",
    "my husband died last year and the account was his",
    "I'm in hospital until tuesday",
    "I look after my mum",
    # Idioms of distress (distress allowed, never crisis)
    "this debt is killing me",
    "you're killing me",
    "I'm dying of embarrassment",
    "drowning in debt",
    "I can't take it anymore",
    "I'm at the end of my rope",
    "stressed to death",
    "my wife will kill me if she finds out",
    "I'm so sick of these calls",
    # Harmless figures of speech
    "I'd kill for a coffee",
    "dying to know the balance",
    "dead battery sorry",
    "my phone died",
    "the deadline is friday",
    "stuck in a dead end job",
    "I'm dead tired",
    "dead serious, I paid already",
    "over my dead body will I pay that fee",
]

NOT_CRISIS_ES = [
    "hola",
    "¿cuánto debo?",
    "puedo pagar 50 al mes",
    "dejen de escribirme",
    "número equivocado",
    "perdí mi trabajo",
    "la fecha límite es mañana",
    "quiero pagar todo",
    "no quiero pagar intereses",
    "no quiero seguir pagando",
    "no puedo seguir pagando esto",
    "no quiero seguir con este plan",
    "quiero acabar con esta deuda",
    "quiero pagar y acabar con todo esto",
    "quiero terminar con esto cuanto antes",
    "me cortaron la luz",
    "me van a cortar el agua",
    "van a cortarme la luz",
    "me colgaron el teléfono",
    "no me cuelguen por favor",
    "ya pagué",
    "¿quién es?",
    "esto es una estafa",
    "quiero un plan de pagos",
    "¿qué pasa si no pago?",
    "cobro el día 28",
    "mándenme un correo",
    "he ingresado 50 euros esta mañana",
    "me ingresaron la nómina ayer",
    "esto es acoso",
    "quiero darme de baja",
    "ya no quiero recibir mensajes",
    "acabé de pagar todo",
    "pagaré el viernes",
    "¿puedo pagar con tarjeta?",
    "¿me pueden explicar el cargo?",
    "no entiendo por qué debo tanto",
    "la deuda es de mi ex",
    "quiero cancelar la domiciliación",
    "me voy de puente el fin de semana",
    "este mes no llego",
    "no tengo dinero",
    "vivo al día",
    "el plazo vence hoy",
    "me van a embargar",
    "mi marido murió el año pasado",
    "estoy en el hospital",
    "estoy de baja",
    "cuido de mi madre",
    "podría matar por un café",
    # Modismos de angustia (distress permitido, nunca crisis)
    "me estás matando con tantos mensajes",
    "me muero de la vergüenza",
    "me muero de hambre",
    "me mata esta deuda",
    "no puedo más",
    "me tienen frito con las llamadas",
    "me rindo, díganme cuánto es",
    "estoy harta de sus llamadas",
    "me van a matar a intereses",
    "el embargo me mata",
    "me mato a trabajar para pagarles",
    "me voy a matar a trabajar este mes",
    "estoy hasta el cuello de deudas",
    "mi vida es un infierno con esta deuda",
    "me quiero morir de la vergüenza",
    "no me quiero morir de hambre por pagar esto",
    # Expresiones inofensivas
    "me muero de risa",
    "me muero por saber cuánto queda",
    "me muero de ganas de terminar de pagar",
    "se me murió el móvil",
    "tengo la batería muerta",
    "estoy muerto de cansancio",
    "mi hijo se va a morir de risa cuando vea esto",
    "me voy a cortar el pelo",
    "te lo juro que pago mañana",
]

# --------------------------------------------------------------------------------------------
# The other signs of vulnerability, and distress
# --------------------------------------------------------------------------------------------

VULNERABLE = {
    Concern.ADDICTION: {
        "en": [
            "I have a gambling problem",
            "i'm addicted to online slots",
            "just got out of rehab",
            "I'm a recovering alcoholic",
            "spent it all at the bookies",
            "my drug problem got out of hand",
        ],
        "es": [
            "tengo ludopatía",
            "soy ludópata",
            "me lo gasté todo en apuestas",
            "tengo una adicción",
            "estoy en un centro de rehabilitación",
            "tengo problemas con el alcohol",
        ],
    },
    Concern.ABUSE: {
        "en": [
            "my partner takes my money",
            "he controls the money",
            "my ex took out a loan in my name",
            "I'm staying in a refuge",
            "my husband hits me",
            "I'm escaping domestic violence",
            "he won't let me have my own bank card",
        ],
        "es": [
            "sufro violencia de género",
            "mi marido me maltrata",
            "mi pareja me quita el dinero",
            "mi ex pidió un préstamo a mi nombre",
            "tengo una orden de alejamiento",
            "él controla todo el dinero",
            "sufrí maltrato durante años",
        ],
    },
    Concern.ILLNESS: {
        "en": [
            "I'm in hospital",
            "I have cancer",
            "I'm having chemo",
            "I had a stroke last month",
            "I've been very ill",
            "my surgery is next week",
            "I'm signed off sick",
        ],
        "es": [
            "estoy hospitalizado",
            "tengo cáncer",
            "estoy con quimio",
            "me van a operar",
            "estoy muy enferma",
            "estoy de baja médica",
        ],
    },
    Concern.MENTAL_HEALTH: {
        "en": [
            "I suffer from depression",
            "my anxiety is really bad",
            "I had a nervous breakdown",
            "I'm bipolar",
            "I see a psychiatrist",
            "I'm on antidepressants",
        ],
        "es": [
            "tengo depresión",
            "sufro ansiedad",
            "tengo trastorno bipolar",
            "estoy yendo al psicólogo",
            "tomo antidepresivos",
            "me dio una crisis de ansiedad",
        ],
    },
    Concern.CARER: {
        "en": [
            "I look after my mum",
            "I'm a full time carer",
            "I get carer's allowance",
            "caring for my disabled son",
            "I care for my husband who has dementia",
            "I'm my dad's carer",
        ],
        "es": [
            "cuido de mi madre",
            "soy cuidadora de mi padre",
            "cuido a mi hijo discapacitado",
            "mi madre es dependiente y la cuido yo",
            "me encargo de mi abuela",
            "tengo a mi cargo a mi suegra",
        ],
    },
    Concern.READING: {
        "en": [
            "I can't read very well",
            "I'm dyslexic",
            "I don't understand English",
            "english is not my first language",
            "I need someone to explain it to me",
            "can you put it in simple words",
            "I can't read or write",
        ],
        "es": [
            "no sé leer bien",
            "no sé leer",
            "tengo dislexia",
            "no entiendo inglés",
            "no entiendo lo que pone en la carta",
            "necesito que me lo expliquen por teléfono",
            "me cuesta leer",
        ],
    },
    Concern.BEREAVEMENT: {
        "en": [
            "my husband died",
            "my mum passed away last week",
            "I'm still paying for the funeral",
            "I lost my wife in march",
            "I'm a widow",
            "he passed away in may and this was his account",
            "the account holder is deceased",
        ],
        "es": [
            "mi marido falleció",
            "murió mi madre",
            "soy viuda",
            "estoy pagando el funeral",
            "perdí a mi hijo el año pasado",
            "se murió mi padre",
        ],
    },
}

VULNERABLE_CASES = [
    pytest.param(concern, language, text, id=f"{concern.value}-{language}-{text[:30]}")
    for concern, by_language in VULNERABLE.items()
    for language, texts in by_language.items()
    for text in texts
]

DISTRESS_EN = [
    "this debt is killing me",
    "you're killing me",
    "I'm dying of embarrassment",
    "I'm drowning in debt",
    "I can't take it anymore",
    "I'm at the end of my rope",
    "stressed to death",
    "I'm at my wits end",
    "I'm so desperate",
    "I can't cope",
    "I feel hopeless",
    "my wife will kill me if she finds out",
    "I'm at breaking point with all this",
    "I'm crying as I type this",
    "I feel like such a burden",
    "I can't go on like this",
]
DISTRESS_ES = [
    "me muero de la vergüenza",
    "me muero de hambre",
    "me mata esta deuda",
    "no puedo más",
    "me estás matando con tantos mensajes",
    "estoy ahogado en deudas",
    "estoy desesperada",
    "no veo salida",
    "ya no aguanto",
    "me quiero morir de la vergüenza",
    "me mato a trabajar y no llego",
    "estoy hasta el cuello",
    "no sé qué hacer",
]

#: Figures of speech that must not trip anything at all.
HARMLESS = [
    "I'd kill for a coffee",
    "dying to know the balance",
    "dead battery",
    "my phone died",
    "the deadline",
    "dead end job",
    "kill the direct debit",
    "cancel it",
    "stop the late fees",
    "shoot me an email",
    "me muero de risa",
    "la fecha límite es mañana",
    "se me murió el móvil",
    "me muero por saber",
    "quiero pagar todo",
]

ALL_CRISIS = CRISIS_EN + CRISIS_ES
ALL_NOT_CRISIS = NOT_CRISIS_EN + NOT_CRISIS_ES
EVERY_MESSAGE = (
    ALL_CRISIS
    + ALL_NOT_CRISIS
    + DISTRESS_EN
    + DISTRESS_ES
    + HARMLESS
    + [text for by_language in VULNERABLE.values() for texts in by_language.values() for text in texts]
)


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------


def test_the_tables_are_as_large_as_promised() -> None:
    assert len(CRISIS_EN) >= 70 and len(CRISIS_ES) >= 70
    assert len(NOT_CRISIS_EN) >= 70 and len(NOT_CRISIS_ES) >= 70
    for by_language in VULNERABLE.values():
        assert all(len(texts) >= 5 for texts in by_language.values())
    assert len(set(ALL_CRISIS)) == len(ALL_CRISIS)
    assert len(set(ALL_NOT_CRISIS)) == len(ALL_NOT_CRISIS)


@pytest.mark.parametrize("text", CRISIS_EN)
def test_english_crisis_signs_are_crisis(text: str) -> None:
    assert screen(text).crisis, text


@pytest.mark.parametrize("text", CRISIS_ES)
def test_spanish_crisis_signs_are_crisis(text: str) -> None:
    assert screen(text).crisis, text


@pytest.mark.parametrize("text", NOT_CRISIS_EN)
def test_ordinary_english_messages_are_not_crisis(text: str) -> None:
    assert not screen(text).crisis, (text, screen(text).matched)


@pytest.mark.parametrize("text", NOT_CRISIS_ES)
def test_ordinary_spanish_messages_are_not_crisis(text: str) -> None:
    assert not screen(text).crisis, (text, screen(text).matched)


@pytest.mark.parametrize(
    ("text", "concern"),
    [
        ("i want to kill myself", Concern.SELF_HARM),
        ("me voy a suicidar", Concern.SELF_HARM),
        ("I'll kill you", Concern.HARM_TO_OTHERS),
        ("te voy a matar", Concern.HARM_TO_OTHERS),
        ("im going to hurt someone", Concern.HARM_TO_OTHERS),
        ("le voy a hacer daño", Concern.HARM_TO_OTHERS),
    ],
)
def test_self_harm_and_threats_to_others_are_told_apart(text: str, concern: Concern) -> None:
    assert concern in screen(text).concerns
    assert concern in CRISIS


@pytest.mark.parametrize(("concern", "language", "text"), VULNERABLE_CASES)
def test_signs_of_vulnerability_are_recognised_but_are_not_crisis(
    concern: Concern, language: str, text: str
) -> None:
    result = screen(text)
    assert concern in result.concerns, (text, result.matched)
    assert result.vulnerable
    assert not result.crisis, (text, result.matched)
    assert result.language == language, (text, result.matched)


@pytest.mark.parametrize("text", DISTRESS_EN + DISTRESS_ES)
def test_idioms_of_distress_are_distress_not_crisis(text: str) -> None:
    result = screen(text)
    assert result.distress, text
    assert not result.crisis, (text, result.matched)
    assert not result.concerns, (text, result.matched)


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_figures_of_speech_trip_nothing(text: str) -> None:
    assert screen(text) == Screening(), (text, screen(text).matched)


def test_a_harmless_figure_of_speech_never_hides_a_crisis_sign() -> None:
    figures_of_speech = [
        "I'd kill for a coffee",
        "I'd murder a curry",
        "dying to know the balance",
        "a cake to die for",
        "dead tired",
        "dead battery",
        "my phone died",
        "stuck in a dead end job",
        "shoot me an email",
        "over my dead body",
        "bored to death",
        "me muero de risa",
        "me muero por saber",
        "se me murió el móvil",
        "mataría por un café",
        "voy a cortarme el pelo",
    ]
    for harmless in figures_of_speech:
        for text in ALL_CRISIS:
            assert screen(f"{harmless} {text}").crisis, (harmless, text)
            assert screen(f"{text} {harmless}").crisis, (text, harmless)


def test_crisis_wins_over_an_idiom() -> None:
    result = screen("this debt is killing me, honestly i want to die")
    assert result.crisis
    assert Concern.SELF_HARM in result.concerns
    spanish = screen("no puedo más, me quiero morir")
    assert spanish.crisis and spanish.language == "es"


def test_a_crisis_alone_is_not_counted_as_vulnerability() -> None:
    result = screen("I want to die")
    assert result.crisis and not result.vulnerable
    both = screen("I have cancer and I want to die")
    assert both.crisis and both.vulnerable


def test_nothing_matched_is_the_empty_screening() -> None:
    for text in ("", "   ", "!!!", "😀", "how much do I owe"):
        result = screen(text)
        assert result == Screening()
        assert result.language is None and not result.crisis and not result.vulnerable


# --------------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", CRISIS_EN + DISTRESS_EN)
def test_the_language_of_an_english_match_is_english(text: str) -> None:
    assert screen(text).language == "en", (text, screen(text).matched)


@pytest.mark.parametrize("text", CRISIS_ES + DISTRESS_ES)
def test_the_language_of_a_spanish_match_is_spanish(text: str) -> None:
    assert screen(text).language == "es", (text, screen(text).matched)


def test_a_word_shared_by_both_languages_takes_the_language_of_the_sentence() -> None:
    assert screen("my dad has cancer").language == "en"
    assert screen("mi padre tiene cáncer").language == "es"


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "plain"),
    [
        ("dieeee", "die"),
        ("Killlll MYSELF!!!", "kill myself"),
        ("I'm", "i am"),
        ("I\u2019m", "i am"),
        ("wanna", "want to"),
        ("gonna", "going to"),
        ("want 2 die", "want to die"),
        ("kiero morir", "quiero morir"),
        ("¿Qué?", "que"),
        ("mí", "mi"),
        ("vergüenza", "verguenza"),
        ("niño", "nino"),
        ("😭😭 sad", "sad"),
        ("better off w/o me", "better off without me"),
    ],
)
def test_spelling_casing_accents_and_emoji_read_the_same(variant: str, plain: str) -> None:
    assert normalise(variant) == normalise(plain)


def test_amounts_are_not_read_as_words() -> None:
    assert normalise("pay 2 pounds") == normalise("pay to pounds")  # a lone 2 between words is "to"
    assert "50" in normalise("can I pay 50 a month")
    assert not screen("I drive 50 kms to work").crisis


# --------------------------------------------------------------------------------------------
# What the screen reports
# --------------------------------------------------------------------------------------------

_NAME = re.compile(r"^[a-z_]+\.(?:en|es|any)\.[a-z0-9_]+$")


def test_matched_holds_only_pattern_names() -> None:
    for text in EVERY_MESSAGE:
        for name in screen(text).matched:
            assert name in PATTERN_NAMES, (text, name)
            assert _NAME.match(name), name


def test_matched_never_holds_the_persons_words() -> None:
    text = "Zebulon Quixote here, 07700 900123, I want to die and nobody would miss me"
    result = screen(text)
    assert result.crisis
    reported = " ".join(result.matched).lower()
    for word in ("zebulon", "quixote", "07700", "900123", "nobody would miss me"):
        assert word not in reported


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=st.sampled_from(ALL_CRISIS),
    # Anything but digits ("50 kms" is a distance, not "kill myself").
    noise=st.text(st.characters(blacklist_categories=("Nd", "Nl", "No")), max_size=80),
)
def test_matched_holds_pattern_names_whatever_else_is_written(message: str, noise: str) -> None:
    # Noise goes before the message: words written right after it can change what it means
    # ("tired of living in this city"), and that is the screen's business, not noise.
    result = screen(f"{noise} {message}")
    assert result.crisis
    assert set(result.matched) <= PATTERN_NAMES


def test_every_pattern_has_a_unique_stable_name() -> None:
    assert all(_NAME.match(name) for name in PATTERN_NAMES)
    families = {name.split(".")[0] for name in PATTERN_NAMES}
    assert families == {concern.value for concern in Concern} | {"distress"}


# --------------------------------------------------------------------------------------------
# Variants: casing, accents, repeated letters, punctuation and emoji never change the answer
# --------------------------------------------------------------------------------------------

_ACCENTS = {
    "a": "á",
    "e": "é",
    "i": "í",
    "o": "ó",
    "u": "ú",
    "n": "ñ",
    "A": "Á",
    "E": "É",
    "I": "Í",
    "O": "Ó",
    "U": "Ú",
    "N": "Ñ",
}
_TAILS = ["!!!", " !!!", " 😭", "😢😢", " 🙏", "!!! 💔", " 😔😔😔"]


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def add_accents(text: str, positions: set[int] | None = None) -> str:
    return "".join(
        _ACCENTS.get(char, char) if positions is None or index in positions else char
        for index, char in enumerate(text)
    )


def strip_punctuation(text: str) -> str:
    return "".join(char for char in text if not unicodedata.category(char).startswith("P"))


def repeat_letter(text: str, index: int, times: int) -> str:
    return text[:index] + text[index] * times + text[index + 1 :]


FIXED_VARIANTS = {
    "upper": str.upper,
    "lower": str.lower,
    "title": str.title,
    "no accents": strip_accents,
    "every accent": add_accents,
    "no punctuation": strip_punctuation,
    **{f"tail {tail!r}": (lambda text, tail=tail: text + tail) for tail in _TAILS},
}


@pytest.mark.parametrize("variant", list(FIXED_VARIANTS))
def test_no_fixed_variant_changes_crisis(variant: str) -> None:
    change = FIXED_VARIANTS[variant]
    for text in ALL_CRISIS:
        assert screen(change(text)).crisis, (variant, text, change(text))
    for text in ALL_NOT_CRISIS:
        assert not screen(change(text)).crisis, (variant, text, change(text), screen(change(text)).matched)


def test_repeating_any_letter_never_changes_crisis() -> None:
    for text in ALL_CRISIS + ALL_NOT_CRISIS:
        expected = screen(text).crisis
        for index, char in enumerate(text):
            if char.isalpha():
                stretched = repeat_letter(text, index, 4)
                assert screen(stretched).crisis == expected, (text, stretched)


@st.composite
def variants(draw: st.DrawFn, table: list[str]) -> tuple[str, str]:
    """A table entry and a random mix of the variants above."""
    text = draw(st.sampled_from(table))
    original = text
    steps = draw(
        st.lists(
            st.sampled_from(
                ["case", "upper", "lower", "title", "strip", "accent", "repeat", "punct", "tail"]
            ),
            max_size=5,
        )
    )
    for step in steps:
        if step == "case":
            flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
            text = "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=True))
        elif step == "upper":
            text = text.upper()
        elif step == "lower":
            text = text.lower()
        elif step == "title":
            text = text.title()
        elif step == "strip":
            text = strip_accents(text)
        elif step == "accent":
            positions = draw(st.sets(st.integers(min_value=0, max_value=max(len(text) - 1, 0))))
            text = add_accents(text, positions)
        elif step == "repeat":
            letters = [index for index, char in enumerate(text) if char.isalpha()]
            if letters:
                text = repeat_letter(text, draw(st.sampled_from(letters)), draw(st.integers(3, 6)))
        elif step == "punct":
            text = strip_punctuation(text)
        else:
            text = text + draw(st.sampled_from(_TAILS))
    return original, text


_VARIANT_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_VARIANT_SETTINGS
@given(pair=variants(ALL_CRISIS))
def test_crisis_survives_any_mix_of_variants(pair: tuple[str, str]) -> None:
    original, variant = pair
    assert screen(variant).crisis, (original, variant)


@_VARIANT_SETTINGS
@given(pair=variants(ALL_NOT_CRISIS))
def test_ordinary_messages_stay_ordinary_under_any_mix_of_variants(pair: tuple[str, str]) -> None:
    original, variant = pair
    assert not screen(variant).crisis, (original, variant, screen(variant).matched)


# --------------------------------------------------------------------------------------------
# Speed: the screen runs on every message
# --------------------------------------------------------------------------------------------


_WORDS = sorted({word for text in EVERY_MESSAGE for word in normalise(text).split()})


def _screen_without_prefilter(text: str, monkeypatch: pytest.MonkeyPatch) -> Screening:
    with monkeypatch.context() as patch:
        patch.setattr(screen_module._Rule, "may_match", lambda self, text, prefixes: True)
        return screen(text)


def test_skipping_patterns_a_text_cannot_match_never_changes_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for text in EVERY_MESSAGE + _long_messages():
        assert screen(text) == _screen_without_prefilter(text, monkeypatch), text


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12))
def test_skipping_patterns_never_changes_the_answer_for_any_mix_of_words(
    words: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = " ".join(words)
    assert screen(text) == _screen_without_prefilter(text, monkeypatch), text


def _long_messages() -> list[str]:
    rng = random.Random(20240613)
    words = " ".join(ALL_CRISIS + ALL_NOT_CRISIS).split()
    lexicon = " ".join(rng.choice(words) for _ in range(600))
    return [
        text[:2000]
        for text in (
            lexicon,
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz     ") for _ in range(2000)),
            "i " * 1000,
            "want to " * 250,
            "no quiero " * 200,
            "kill " * 400,
            "a" * 2000,
            "me " * 700,
            ("how much do I owe, can I pay 50 a month? " * 50) + " I want to die",
            ("¿cuánto debo? puedo pagar 50 al mes " * 60) + " me quiero morir",
            "😭" * 2000,
        )
    ]


def test_a_two_thousand_character_message_screens_in_well_under_50_ms() -> None:
    for text in _long_messages():
        assert len(text) >= 1990
        best = min(_timed(text) for _ in range(3))
        assert best < 0.050, (text[:40], best)


def _timed(text: str) -> float:
    start = time.perf_counter()
    screen(text)
    return time.perf_counter() - start
