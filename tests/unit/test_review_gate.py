"""The review gate's rules: a failed check makes the verdict revise, whatever the model said."""

from __future__ import annotations

from orchestrator.agent.review import checks_verdict, gate, review_prompt
from orchestrator.checks import Checked
from orchestrator.domain import prompt_labels as L
from orchestrator.domain.constants import AgentType
from orchestrator.domain.models import AgentOutput, CheckResult, CriterionCheck, Verdict

PASSED = CheckResult(path="site/index.html", check="html", ok=True, detail="loaded")
FAILED = CheckResult(path="api/app.py", check="python-compile", ok=False,
                     detail="SyntaxError: invalid syntax (line 1)")
UNCHECKED = CheckResult(path="site/styles.css", check="unchecked", ok=None,
                        detail="no checker for .css files")
MET = CriterionCheck(criterion="Has a menu", met=True)


def test_a_failed_check_overrules_a_pass() -> None:
    verdict = gate(Verdict(verdict="pass", criteria=[MET], summary="Fine."),
                   Checked([PASSED, FAILED, UNCHECKED]))
    assert verdict.verdict == "revise"
    assert verdict.criteria == [MET, CriterionCheck(
        criterion="check python-compile of api/app.py", met=False,
        note="SyntaxError: invalid syntax (line 1)")]
    assert verdict.summary == "The reviewer passed it, but 1 of 3 checks failed."


def test_passing_and_unchecked_files_leave_the_verdict_alone() -> None:
    said = Verdict(verdict="pass", criteria=[MET], summary="Fine.")
    assert gate(said, Checked([PASSED, UNCHECKED])) == said
    revise = Verdict(verdict="revise", criteria=[MET.model_copy(update={"met": False})])
    assert gate(revise, Checked([PASSED])) == revise


def test_checks_alone_pass_only_what_ran_and_passed() -> None:
    assert checks_verdict(Checked([PASSED, UNCHECKED])).verdict == "pass"
    assert checks_verdict(Checked([PASSED, UNCHECKED])).summary == (
        "1 checks passed, the rest not checked.")
    assert checks_verdict(Checked([FAILED])).verdict == "revise"
    assert checks_verdict(Checked([])).verdict == "pass"


def test_the_reviewer_reads_every_result() -> None:
    record = type("T", (), {"index": 0, "title": "Site", "agent_type": AgentType.QA_ENGINEER,
                            "description": "d", "deliverables": ["x"],
                            "acceptance_criteria": ["y"]})()
    prompt = review_prompt(record, AgentOutput(summary="s", content="c"), [],  # type: ignore[arg-type]
                           [PASSED, FAILED, UNCHECKED])
    checks = prompt[prompt.index(L.CHECKS_HEAD):prompt.index(L.UNDER_REVIEW)]
    assert "- html of site/index.html: passed: loaded" in checks
    assert "- python-compile of api/app.py: FAILED: SyntaxError" in checks
    assert "- unchecked of site/styles.css: not checked: no checker" in checks
