"""A refusal a person can act on: the exception carries the message they see. Plain Python (the
engine and provenance packages use it too)."""


class Refusal(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
