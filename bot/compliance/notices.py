"""The few things the product says itself, outside the dialogue, in each language."""

from __future__ import annotations

_NOTICES: dict[str, dict[str, str]] = {
    "person_within_hour": {
        "en": "A colleague from our team will answer you here, usually within the hour.",
        "es": "Una persona de nuestro equipo le responderá por aquí, normalmente en menos de una hora.",
    },
    "person_later": {
        "en": "Our team is away right now; a colleague will answer you here {day} after {time} (your time).",
        "es": (
            "Nuestro equipo no está disponible ahora; una persona le responderá por aquí {day} "
            "a partir de las {time} (su hora)."
        ),
    },
    "person_soon": {
        "en": "A colleague from our team will answer you here as soon as they can.",
        "es": "Una persona de nuestro equipo le responderá por aquí lo antes posible.",
    },
    "day_today": {"en": "today", "es": "hoy"},
    "day_tomorrow": {"en": "tomorrow", "es": "mañana"},
    "day_on": {"en": "on {day}", "es": "el {day}"},
    "welcome_back": {
        "en": "Thanks for waiting. You're back with the assistant; anything else I can help with?",
        "es": "Gracias por esperar. Vuelve a hablar con el asistente; ¿le puedo ayudar en algo más?",
    },
    "text_only": {
        "en": "Sorry, I can only read text here. Could you type your message?",
        "es": "Lo siento, aquí solo puedo leer texto. ¿Podría escribirme su mensaje?",
    },
    "telegram_link": {
        "en": "If you'd rather chat on Telegram, this link opens a private chat with us: {link}",
        "es": "Si prefiere hablar por Telegram, este enlace abre un chat privado con nosotros: {link}",
    },
    "email_opt_out": {
        "en": "You can stop these emails at any time: reply STOP, or use the unsubscribe link.",
        "es": (
            "Puede dejar de recibir estos correos cuando quiera: responda BAJA "
            "o use el enlace para darse de baja."
        ),
    },
    "email_stopped": {
        "en": "Done: you won't get any more emails from us. If you change your mind, just write to us.",
        "es": "Hecho: no recibirá más correos nuestros. Si cambia de opinión, escríbanos.",
    },
    "care_follow_up": {
        "en": (
            "Thank you for writing. A person from our team has your messages and will reach out to "
            "you personally. If you need to talk to someone now, please {line}."
        ),
        "es": (
            "Gracias por escribir. Una persona de nuestro equipo tiene sus mensajes y se pondrá en "
            "contacto con usted personalmente. Si necesita hablar con alguien ahora, por favor, {line}."
        ),
    },
    "card_number": {
        "en": (
            "For your safety, please never send card numbers here: we've deleted it and nobody will "
            "use it. Payments are only ever made through a secure link we send you."
        ),
        "es": (
            "Por su seguridad, no envíe nunca números de tarjeta por aquí: lo hemos borrado y nadie "
            "lo usará. Los pagos se hacen siempre a través de un enlace seguro que le enviamos."
        ),
    },
    "choice_expired": {
        "en": "That choice is no longer open. Please use the latest message.",
        "es": "Esa opción ya no está disponible. Use el mensaje más reciente, por favor.",
    },
}


def notice(name: str, language: str) -> str:
    """Notice ``name`` in ``language`` (English when there is no translation)."""
    texts = _NOTICES[name]
    return texts.get(language) or texts["en"]
