"""The mistakes gallery's order and captions: sorted by the probability of the wrong answer, the number each
caption shows last, so the order can be read off the captions (the saved loss order cannot)."""

from __future__ import annotations

from simpsons_core.inference.evaluate import Mistake, most_confident_first


def mistake(true: float, predicted: float) -> Mistake:
    """A bart_simpson image answered homer_simpson, the rest of the probability on lisa_simpson."""
    probabilities = {"bart_simpson": true, "homer_simpson": predicted, "lisa_simpson": 1 - true - predicted}
    return Mistake("x.jpg", "bart_simpson", "homer_simpson", 0.0, probabilities)


def test_most_confidently_wrong_first_even_when_the_loss_says_otherwise() -> None:
    # 60% sure with 1% left for the truth costs more loss (-ln 0.01) than 90% sure with 5% (-ln 0.05).
    timid, bold, tied_but_worse = mistake(0.01, 0.60), mistake(0.05, 0.90), mistake(0.02, 0.90)
    assert most_confident_first([timid, bold, tied_but_worse]) == [tied_but_worse, bold, timid]


def test_the_caption_shows_both_probabilities() -> None:
    assert mistake(0.05, 0.90).caption == "bart_simpson 5% → homer_simpson 90%"
