def test_a_contact_window_stored_by_the_dialogue_reads_back_the_same() -> None:
    from datetime import time as dtime

    from bot.compliance.gate import window_from_json
    from dialogue.parsing import ContactWindow

    window = ContactWindow(after=dtime(9, 30), before=dtime(18, 0), excluded_weekdays=frozenset({6, 2}),
                           weekdays_only=True)  # fmt: skip
    assert window_from_json(window.to_json()) == window
    assert window_from_json(ContactWindow().to_json()) == ContactWindow()
