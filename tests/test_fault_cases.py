"""The fault-case harness judges, selects and writes as its docstring says (the full run is
``python -m experiments.fault_cases``; here one real case and the judge on fakes)."""

from __future__ import annotations

import pathlib

from experiments import fault_cases as fc


def _harness(tmp_path) -> fc.Harness:
  return fc.Harness(tmp_path, mnist=None)


def test_a_refused_command_is_clean_only_without_traceback_and_with_the_words(tmp_path):
  h = _harness(tmp_path)
  good = fc.Proc(1, "", "error: config.batch_size must be a positive int, got 0\n", 2.0)
  assert fc.refused(h, good, "batch_size").clean
  assert not fc.refused(h, good, "learning_rate").clean            # names another field
  trace = fc.Proc(1, "", "Traceback (most recent call last):\nValueError: batch_size\n", 2.0)
  assert not fc.refused(h, trace, "batch_size").clean
  assert not fc.refused(h, fc.Proc(0, "", "", 2.0)).clean          # it ran
  assert not fc.refused(h, fc.Proc(-9, "", "", 300.0, timed_out=True)).clean


def test_a_run_is_clean_only_when_every_check_holds(tmp_path):
  h = _harness(tmp_path)
  ok = fc.Proc(0, "", "", 5.0)
  assert fc.ran(h, ok, {"trained": True}).clean
  verdict = fc.ran(h, ok, {"trained": True, "same result": False})
  assert not verdict.clean and "same result: NO" in verdict.outcome
  assert not fc.ran(h, fc.Proc(1, "", "error: x", 5.0), {}).clean
  assert fc.same_metrics({"accuracy": 0.5, "train_time_s": 1.0},
                         {"accuracy": 0.5, "train_time_s": 9.0})
  assert not fc.same_metrics({"accuracy": 0.5}, {"accuracy": 0.50001})
  assert not fc.same_metrics({}, {})


def test_one_real_case_runs_clean(tmp_path):
  case = next(c for c in fc.CASES if c.title == "`--config.optimizer.learning_rate=-1`")
  h = _harness(tmp_path)
  h.case = case.number
  verdict = case.run(h)
  assert verdict.clean, verdict
  assert "optimizer.learning_rate" in verdict.message


def test_select_and_write_replace_only_the_marked_section(tmp_path):
  assert [c.number for c in fc.select("1-3,5")] == [1, 2, 3, 5]
  assert len(fc.select(None)) == len(fc.CASES) >= 100
  out = tmp_path / "r.md"
  out.write_text("intro\n")
  fc.write(out, f"{fc.BEGIN}\nfirst\n{fc.END}")
  fc.write(out, f"{fc.BEGIN}\nsecond\n{fc.END}")
  assert out.read_text() == f"intro\n\n{fc.BEGIN}\nsecond\n{fc.END}\n"
  assert pathlib.Path(fc.REPO / "configs" / "tiny.py").is_file()
