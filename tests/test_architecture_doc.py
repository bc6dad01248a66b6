"""docs/architecture.md's picture is generated from the rule graph and must be current."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import architecture_picture  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="module")
def block():
    return architecture_picture.picture()  # one snakemake --rulegraph for the tests below


def test_picture_is_current():
    r = subprocess.run([sys.executable, str(ROOT / "scripts/architecture_picture.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_picture_names_every_rule_file_and_step(block):
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        if architecture_picture.RULE_RE.search(smk.read_text()):  # common.smk and report_inputs.smk hold none
            assert f'["{smk.name}"]' in block, smk.name
    assert "finepseudo.pseudo.steps.pseudo_label_step" in block
    assert "pseudo_label --> retrain_fe" in block


def test_check_fails_on_a_stale_picture(block):
    doc = architecture_picture.DOC.read_text()
    stale = architecture_picture.render(doc, "```mermaid\nflowchart TD\n```")
    assert stale != doc
    assert architecture_picture.render(stale, block) == doc
