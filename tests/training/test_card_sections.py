"""A model card's marked sections: each report rewrites its own and leaves the rest."""

from __future__ import annotations

from akhbar.training.card_sections import write_section


def test_write_section_replaces_its_own_block_only(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("# card\n\nintro\n")
    write_section(card, "other\n", "shipped-figures")
    write_section(card, "first\n", "base-report")
    write_section(card, "second\n", "base-report")
    text = card.read_text()
    assert text.count("<!-- base-report -->") == 1 and text.count("<!-- /base-report -->") == 1
    assert "second" in text and "first" not in text and text.startswith("# card\n\nintro\n")
    assert "<!-- shipped-figures -->\nother\n<!-- /shipped-figures -->" in text
