"""What the lobby corpus's people say: the visitor's questions (in halves, for the
mid-sentence pauses) and interruptions, the kiosk's answers (its echo) and the other
talkers' babble. Text only; bench/lobby_corpus.py turns it into speech."""

# (first half, second half): a question that may be spoken with a pause between the halves.
EN_QUESTIONS = [
    ("Excuse me, where is", "the nearest restroom?"),
    ("Could you tell me", "where the elevators are?"),
    ("What time does", "the cafeteria close today?"),
    ("How do I get", "to the parking garage?"),
    ("Is there a pharmacy", "somewhere in this building?"),
    ("Where can I", "find the visitor reception?"),
    ("Which floor is", "the radiology department on?"),
    ("Can I leave", "my luggage here for an hour?"),
]
JA_QUESTIONS = [
    ("すみません、", "お手洗いはどこですか。"),
    ("エレベーターは", "どちらにありますか。"),
    ("食堂は", "何時まで開いていますか。"),
    ("駐車場へは", "どう行けばいいですか。"),
    ("受付は", "何階にありますか。"),
    ("薬局は", "この建物の中にありますか。"),
]
EN_INTERRUPTIONS = [
    "Stop, wait a moment.",
    "Sorry, one more question.",
    "No, that is not what I asked.",
]
JA_INTERRUPTIONS = ["ちょっと待ってください。", "すみません、もういいです。", "いいえ、違います。"]
EN_ANSWERS = [
    "The restroom is down the hall on your left, just past the reception desk. "
    "If you reach the elevators, you have gone a little too far.",
    "The cafeteria on the second floor is open until seven in the evening today, "
    "and the coffee shop by the entrance stays open until nine.",
]
JA_ANSWERS = [
    "お手洗いは、受付の先の廊下を左に進んだところにございます。エレベーターの手前です。",
    "食堂は二階にあり、本日は午後七時まで営業しております。入口のカフェは九時までです。",
]
BABBLE_LINES = [
    "I think the meeting was moved to three o'clock this afternoon.",
    "Did you see the game last night? It went into overtime again.",
    "We should probably grab lunch before the next appointment.",
    "My sister is visiting next week, so I took a few days off.",
    "The traffic this morning was terrible on the main road.",
    "She said the results would be ready by the end of the day.",
]
