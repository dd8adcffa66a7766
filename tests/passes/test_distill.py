"""``modelport distill`` on the embedded trained model: student specs, the
teacher's translations (resumable, identical under torchrun), training
(exact after a Ctrl-C and --resume), the student folder and its report, and
the sharded ``translate`` under torchrun."""

from __future__ import annotations

import hashlib
import itertools
import json
import signal
import subprocess
from pathlib import Path

import pytest
import torch

import modelport
import modelport.cli
from modelport.errors import InvalidInputError
from modelport.generation.shards import World, chunk_path, sharded_map
from modelport.model.folder import PortedFolder
from modelport.passes.distill import TrainOptions, distill
from modelport.passes.distill.kd import make_kd_data
from modelport.passes.distill.student import fresh_student, parse_student, student_config
from modelport.passes.distill.trainer import train
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS, ROOT
from tests.helpers.torchrun import two_processes

TRAIN = (CORPUS / "train.en").read_text(encoding="utf-8").splitlines()
TRAIN_DE = (CORPUS / "train.de").read_text(encoding="utf-8").splitlines()
DEV = (CORPUS / "valid.en").read_text(encoding="utf-8").splitlines()[:8]
DEV_REF = (CORPUS / "valid.de").read_text(encoding="utf-8").splitlines()[:8]
FAST = {"beam": 1, "max_len_b": 12}  # keeps an untrained student's outputs short


@pytest.fixture(scope="module")
def teacher_dir(ported_default) -> Path:
    """The embedded model, converted: the teacher."""
    return ported_default.path


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# student specs


def test_student_specs_parse_and_refuse_with_reasons(tmp_path):
    spec = parse_student("prune:decoder-layers=1,ffn=0.5")
    assert spec.from_teacher and spec.prune == {"decoder_layers": 1, "ffn": 0.5}
    tiny = parse_student("tiny")
    assert tiny.preset == "tiny" and tiny.overrides["decoder_autoreg"] == "ssru"
    for bad, said in (("prune:layers=1", "KEY=VALUE with KEY one of"), ("prune:decoder-layers=x", "an integer"),
                      ("prune:", "name what to prune"), ("huge", "is not one of"),
                      (f"config:{tmp_path / 'missing.json'}", "does not exist")):
        with pytest.raises(InvalidInputError, match=said):
            parse_student(bad)
    fixed = _write(tmp_path / "s.json", ['{"d_model": 64, "target_vocab_size": 10}'])
    with pytest.raises(InvalidInputError, match="keeps the teacher's tokenizer"):
        parse_student(f"config:{fixed}")


def test_preset_student_keeps_the_teachers_vocabulary_and_is_seeded(teacher_dir):
    teacher = modelport.load(teacher_dir).config
    cfg = student_config(teacher, parse_student("tiny"))
    assert (cfg.decoder_autoreg, cfg.encoder_layers, cfg.decoder_layers, cfg.d_model, cfg.encoder_ffn_dim) == \
        ("ssru", 6, 2, 256, 1536)
    assert (cfg.source_vocab_size, cfg.target_vocab_size, cfg.pad_token_id) == \
        (teacher.source_vocab_size, teacher.target_vocab_size, teacher.pad_token_id)
    a, b, c = fresh_student(cfg, 1), fresh_student(cfg, 1), fresh_student(cfg, 2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.encoder.embed.embed_tokens.weight, c.encoder.embed.embed_tokens.weight)
    assert a.encoder.embed.embed_tokens.weight[cfg.pad_token_id].abs().sum() == 0


# ---------------------------------------------------------------------------
# chunks: resumable and in order


def test_sharded_map_resumes_without_redoing_finished_chunks(tmp_path):
    lines = [f"line {i}" for i in range(23)]
    done: list[int] = []

    def work(chunk: list[str], first: int) -> list[str]:
        if first == 10 and not done.count(-1):
            done.append(-1)
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third chunk
        done.append(first)
        return [x.upper() for x in chunk]

    with pytest.raises(KeyboardInterrupt):
        list(sharded_map(lines, work, chunk_lines=5, work_dir=tmp_path, where=World()))
    assert done == [0, 5, -1] and chunk_path(tmp_path, 1).is_file() and not chunk_path(tmp_path, 2).exists()
    out = [x for chunk in sharded_map(lines, work, chunk_lines=5, work_dir=tmp_path, where=World()) for x in chunk]
    assert done == [0, 5, -1, 10, 15, 20]  # the finished chunks were not redone
    assert out == [x.upper() for x in lines]
    assert not list(tmp_path.glob("*.tmp"))


def test_teacher_translations_resume_after_an_interrupt(teacher_dir, tmp_path, monkeypatch):
    teacher = modelport.load(teacher_dir)
    lines = TRAIN[:30]
    straight = make_kd_data(teacher, "sha", lines, tmp_path / "a", FAST, World(), chunk_lines=8)
    calls = {"n": 0}
    original = type(teacher).translate

    def flaky(self, chunk, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, chunk, **kw)

    monkeypatch.setattr(type(teacher), "translate", flaky)
    with pytest.raises(KeyboardInterrupt):
        make_kd_data(teacher, "sha", lines, tmp_path / "b", FAST, World(), chunk_lines=8)
    resumed = make_kd_data(teacher, "sha", lines, tmp_path / "b", FAST, World(), chunk_lines=8)
    assert resumed.chunks_reused == 2
    assert resumed.targets == straight.targets
    assert resumed.target_path.read_text(encoding="utf-8") == straight.target_path.read_text(encoding="utf-8")
    with pytest.raises(InvalidInputError, match="other data_sha256"):
        make_kd_data(teacher, "sha", lines[:-1], tmp_path / "b", FAST, World(), chunk_lines=8)


# ---------------------------------------------------------------------------
# training: Ctrl-C, then --resume, gives the uninterrupted run's student


def _small_pairs(ported) -> tuple[list[tuple[list[int], list[int]]], object]:
    tok = ported.tokenizer
    pairs = [(tok.encode(s), tok.encode_target(t)) for s, t in zip(TRAIN[:96], TRAIN_DE[:96])]
    cfg = student_config(ported.config, parse_student("tiny")).replace(
        encoder_layers=1, decoder_layers=1, d_model=32, encoder_heads=2, decoder_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64)
    return pairs, cfg


@pytest.mark.parametrize("log_every", [1, 4])  # 4: interrupted between two log lines (after update 2)
def test_training_interrupted_and_resumed_equals_an_uninterrupted_run(teacher_dir, tmp_path, log_every):
    ported = modelport.load(teacher_dir)
    pairs, cfg = _small_pairs(ported)
    opts = TrainOptions(max_tokens=400, max_updates=8, eval_every=2, save_every=100, log_every=log_every,
                        warmup_updates=4, lr=1e-3, seed=3)

    def improving(start: int):  # deterministic dev scores that keep improving: the kept weights are the last
        counter = itertools.count(start)
        return lambda model: {"bleu": float(next(counter)), "chrf": 0.0}

    a = train(fresh_student(cfg, 3), pairs, opts, tmp_path / "a", World(), evaluate=improving(1))
    first = improving(1)

    def interrupting(model) -> dict[str, float]:
        signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, during update 2's evaluation
        return first(model)

    with pytest.raises(KeyboardInterrupt):
        train(fresh_student(cfg, 3), pairs, opts, tmp_path / "b", World(), evaluate=interrupting)
    state = json.loads((tmp_path / "b" / "train" / "last" / "state.json").read_text())
    assert state["update"] == 2  # the update in progress finished, then the checkpoint
    b = train(fresh_student(cfg, 99), pairs, opts, tmp_path / "b", World(), evaluate=improving(10), resume=True)
    assert b.updates == a.updates == 8
    assert a.state.keys() == b.state.keys()
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state), "resumed weights differ"
    losses = lambda log: [(r["update"], r["loss"]) for r in log if "loss" in r]  # noqa: E731
    assert losses(a.log) == losses(b.log)  # no update logged twice or lost, each line's mean over the same updates
    assert [u for u, _ in losses(a.log)] == list(range(log_every, 9, log_every))
    assert losses(a.log)[-1][1] < losses(a.log)[0][1]
    last = tmp_path / "b" / "train" / "last" / "state.json"  # a checkpoint whose window is not (loss, tokens) pairs
    last.write_text(json.dumps({**json.loads(last.read_text()), "window": [[1.0]]}))
    with pytest.raises(InvalidInputError, match=r"cannot be read .* --force \(without --resume\)"):
        train(fresh_student(cfg, 3), pairs, opts, tmp_path / "b", World(), resume=True)


def test_accumulation_and_bf16_autocast_train(teacher_dir, tmp_path):
    ported = modelport.load(teacher_dir)
    pairs, cfg = _small_pairs(ported)
    one = TrainOptions(max_tokens=400, max_epochs=1, log_every=1, warmup_updates=2, lr=1e-3)
    plain = train(fresh_student(cfg, 1), pairs, one, tmp_path / "a", World())
    two = train(fresh_student(cfg, 1), pairs, TrainOptions(**{**one.__dict__, "accumulate": 2}), tmp_path / "b",
                World())
    assert two.updates == -(-plain.updates // 2)  # two batches per update
    bf16 = train(fresh_student(cfg, 1), pairs, TrainOptions(**{**one.__dict__, "bf16": True}), tmp_path / "c",
                 World())
    assert bf16.updates == plain.updates and all(v.dtype == torch.float32 for v in bf16.state.values())
    losses = [r["loss"] for r in bf16.log if "loss" in r]
    assert all(x == x for x in losses) and losses[-1] < losses[0]


# ---------------------------------------------------------------------------
# the whole command


@pytest.fixture(scope="module")
def distilled(teacher_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    data = _write(root / "train.en", TRAIN[:64])
    dev, ref = _write(root / "dev.en", DEV), _write(root / "dev.de", DEV_REF)
    report = distill(teacher_dir, root / "student", data=data, dev=dev, dev_references=ref,
                     student="prune:decoder-layers=1", then_quantize="int8", decoding=FAST, chunk_lines=16,
                     training=TrainOptions(max_tokens=600, max_updates=6, eval_every=3, warmup_updates=3))
    return root, report


def test_distilled_student_is_an_ordinary_ported_folder(distilled, teacher_dir):
    root, report = distilled
    out = root / "student"
    student = modelport.load(out)
    assert student.config.decoder_layers == 1
    assert len(student.translate(["Hello world ."])[0][0]["text"]) > 0
    history = json.loads((out / "conversion.json").read_text())["history"]
    assert [h["pass"] for h in history] == ["prune", "distill"]
    entry = history[-1]
    teacher_sha = hashlib.sha256((teacher_dir / "model.safetensors").read_bytes()).hexdigest()
    assert entry["changed"]["teacher"]["sha256"] == teacher_sha == report.teacher_sha256
    assert entry["changed"]["data"]["lines"] == 64
    assert entry["options"]["seed"] == 1 and entry["changed"]["training"]["updates"] == 6
    for name in ("distill_report.json", "distill_report.md", "train_log.jsonl", "learning_curve.png",
                 "distill_speed_bleu.png"):
        assert (out / name).is_file(), name
    labels = [r.label for r in report.models]
    assert labels == ["teacher", "pruned, not distilled", "student (distilled)", "student int8"]
    assert report.models[0].bleu is not None and report.models[0].teacher_agreement_percent == 100.0
    assert PortedFolder.open(root / "student-int8").quantization == "int8"
    card = modelport.make_card(out)
    assert "distilled" in str(card) and teacher_sha[:12] in str(card)


def test_distill_refuses_bad_input_in_one_line(distilled, teacher_dir, capsys):
    root, _ = distilled
    data = str(root / "train.en")
    base = ["distill", str(teacher_dir), str(root / "other"), "--data", data]
    assert "--student `huge` is not one of" in one_line_error(base + ["--student", "huge"], capsys)
    assert "--dev and --dev-ref go together" in one_line_error(base + ["--dev", data], capsys)
    assert "exists" in one_line_error(["distill", str(teacher_dir), str(root / "student"), "--data", data],
                                      capsys)
    work = root / "student.distill-work"  # the fixture's: holds a run
    assert "--resume continues it" in one_line_error(base + ["--work-dir", str(work)], capsys)
    foreign = root / "not-a-work-dir"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine\n")
    assert "was not made by `modelport distill`" in one_line_error(
        base + ["--work-dir", str(foreign), "--force"], capsys)
    assert (foreign / "keep.txt").read_text() == "mine\n"  # --force never deletes a directory distill did not make
    assert "trains another student" in one_line_error(base + ["--work-dir", str(work), "--resume", "--student",
                                                              "tiny", "--beam", "1", "--max-len-b", "12",
                                                              "--chunk-lines", "16"], capsys)
    # the student learns first-best translations: --nbest is not offered, and the API refuses n-best options
    # before making anything (they were computed, then dropped)
    with pytest.raises(SystemExit):
        modelport.cli.main(base + ["--nbest", "2"])
    assert "unrecognized arguments: --nbest 2" in capsys.readouterr().err
    for decoding in ({"nbest": 2}, {"semantics": "marian", "n_best": True}):
        with pytest.raises(InvalidInputError, match="first-best translations"):
            distill(teacher_dir, root / "other", data=data, decoding=decoding)
    assert not (root / "other").exists() and not (root / "other.distill-work").exists()


# ---------------------------------------------------------------------------
# torchrun, 2 CPU processes (gloo)


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return two_processes(["-m", "modelport.cli", *args], cwd)


def test_two_processes_make_the_same_teacher_translations_and_train(teacher_dir, tmp_path):
    data = _write(tmp_path / "train.en", TRAIN[:160])
    dev, ref = _write(tmp_path / "dev.en", DEV), _write(tmp_path / "dev.de", DEV_REF)
    # chunks of 64 lines: a round of two, then one chunk of 32 lines the two processes share (a part each)
    one = make_kd_data(modelport.load(teacher_dir), "sha", TRAIN[:160], tmp_path / "one", FAST, World(),
                       chunk_lines=64)
    run = _torchrun(["distill", str(teacher_dir), "student", "--data", str(data), "--dev", str(dev), "--dev-ref",
                     str(ref), "--beam", "1", "--max-len-b", "12", "--chunk-lines", "64", "--batch-tokens", "500",
                     "--max-updates", "24", "--max-epochs", "100", "--eval-every", "8", "--warmup-updates", "4",
                     "--lr", "1e-3", "--patience", "10"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    two = (tmp_path / "student.distill-work" / "kd" / "train.tgt").read_text(encoding="utf-8")
    assert two == one.target_path.read_text(encoding="utf-8")
    report = json.loads((tmp_path / "student" / "distill_report.json").read_text())
    assert report["training"]["processes"] == 2 and report["training"]["updates"] == 24
    log = [json.loads(x) for x in (tmp_path / "student" / "train_log.jsonl").read_text().splitlines()]
    dev_scores = [r["dev_chrf"] for r in log if "dev_chrf" in r]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0] and max(dev_scores[1:]) > dev_scores[0], log
    assert run.stdout.count("written to:") == 1  # rank 0 prints, the other process does not


def test_translate_under_torchrun_writes_the_hypotheses_one_process_writes(teacher_dir, tmp_path):
    source = _write(tmp_path / "in.en", DEV * 40)  # 320 lines: two chunks of 256 and 64
    assert modelport.cli.main(["translate", str(teacher_dir), "-i", str(source), "-o", str(tmp_path / "one"),
                               "--beam", "2", "--nbest", "2", "--scores"]) == 0
    run = _torchrun(["translate", str(teacher_dir), "-i", str(source), "-o", str(tmp_path / "two"), "--beam",
                     "2", "--nbest", "2", "--scores"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    one = [line.split("\t") for line in (tmp_path / "one").read_text(encoding="utf-8").splitlines()]
    two = [line.split("\t") for line in (tmp_path / "two").read_text(encoding="utf-8").splitlines()]
    assert [text for _, text in two] == [text for _, text in one]  # the same hypotheses, in input order
    # batches are formed within each 256-line chunk, so padding (and float sums) can differ from one process's
    assert max(abs(float(a) - float(b)) for (a, _), (b, _) in zip(one, two)) < 1e-5


@pytest.mark.parametrize("command, says", [
    (["translate", "{teacher}", "-i", "bad.en", "-o", "out.de"], "line 2 of input `bad.en` must be UTF-8 text"),
    (["distill", "{teacher}", "taken", "--data", "good.en"], "output `taken` already exists (pass --force"),
])
def test_an_error_every_process_meets_is_said_once(command, says, teacher_dir, tmp_path):
    """Under torchrun every process checks the same input: the error is one line
    from rank 0, not one per process, and no process is left waiting for one
    that failed (distill's rank 1 died in a barrier with a gloo traceback)."""
    (tmp_path / "bad.en").write_bytes(b"Hello\n\xff bad\n")
    _write(tmp_path / "good.en", DEV)
    (tmp_path / "taken").mkdir()
    run = _torchrun([part.format(teacher=teacher_dir) for part in command], tmp_path)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if "modelport: error:" in line]
    assert errors == [f"modelport: error: {says}" + errors[0].split(says, 1)[1]] if errors else False, run.stderr
    assert len(errors) == 1 and "[rank1]" not in run.stderr, run.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.en", "good.en", "taken"]


@pytest.mark.parametrize("student, says", [
    ("prune:decoder-layers=9", "--decoder-layers must be an integer in [1, 3], but is 9"),
    ("prune:heads=0.01", "--heads 0.01 removes no attention head"),
    ("prune:ffn=1.5", "--ffn must be a fraction in (0, 1)"),
])
def test_a_prune_student_the_teacher_cannot_give_is_refused_before_the_work_directory(student, says, teacher_dir,
                                                                                      tmp_path, capsys):
    """The counts were checked when the student was made, after the work directory (left behind)."""
    data = _write(tmp_path / "train.en", DEV)
    line = one_line_error(["distill", str(teacher_dir), str(tmp_path / "student"), "--data", str(data),
                           "--student", student], capsys)
    assert says in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.en"]


def test_a_preset_student_the_teacher_cannot_have_is_refused_before_the_work_directory(tmp_path, capsys):
    """A T5 teacher (relative positions) and the tiny preset's SSRU decoder: refused after the work directory
    was made, which was left behind."""
    teacher = modelport.convert(str(ROOT / "tests" / "data" / "t5_tf" / "v1_1"), tmp_path / "t5")
    data = _write(tmp_path / "train.en", DEV)
    line = one_line_error(["distill", str(teacher.path), str(tmp_path / "student"), "--data", str(data),
                           "--student", "tiny"], capsys)
    assert "an SSRU decoder needs absolute positions" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t5", "train.en"]


@pytest.mark.parametrize("overrides", [{"d_model": 10**9}, {"encoder_layers": 10**5, "decoder_layers": 10**5}])
def test_a_student_no_machine_could_train_is_refused_before_it_is_built(ported_default, overrides, tmp_path) -> None:
    """d_model 10**9 asked the allocator for 3 TB (RuntimeError); 10**5 layers ran out of memory building them."""
    from modelport.errors import InvalidInputError
    from modelport.passes.distill.student import parse_student, student_config

    path = tmp_path / "student.json"
    path.write_text(json.dumps(overrides))
    with pytest.raises(InvalidInputError, match="GiB to train, more than the .* GiB this process may use"):
        student_config(ported_default.config, parse_student(f"config:{path}"))


@pytest.mark.parametrize("v2", [True, False])
def test_usable_memory_reads_the_control_groups_cap(tmp_path, v2) -> None:
    """A container's cap, not the host's memory, bounds what a student may need (cgroup v2 and v1 layouts)."""
    from modelport.passes.distill.student import usable_memory

    own = tmp_path / "self-cgroup"
    own.write_text("0::/job/7\n" if v2 else "4:memory:/job/7\n3:cpu:/\n")
    group = tmp_path / ("job/7" if v2 else "memory/job/7")
    group.mkdir(parents=True)
    (group / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text("3221225472\n")
    assert usable_memory(tmp_path, own) == 3 << 30
    (group / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text("max\n")  # uncapped
    machine = usable_memory(tmp_path / "none", tmp_path / "none")
    assert usable_memory(tmp_path, own) == machine > 3 << 30


def test_label_smoothing_flag_takes_the_trainers_range(capsys) -> None:
    """The flag took (0, 1] and the trainer [0, 1): 0 (no smoothing) was refused, 1 passed on to fail later."""
    from modelport.cli import build_parser

    base = ["distill", "teacher", "student", "--data", "d.txt", "--label-smoothing"]
    assert build_parser().parse_args([*base, "0"]).label_smoothing == 0.0
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*base, "1"])
    assert e.value.code == 2 and "must be a number in [0, 1), but is 1" in capsys.readouterr().err


def test_a_marian_teachers_student_never_emits_its_pad_and_logs_finite_losses(tmp_path) -> None:
    """A Marian port appends a pad with a -inf logit (Marian's vocabulary has none). Label smoothing spread
    mass onto it: every logged loss was Infinity (log.jsonl not JSON); and a fresh student's zero bias could
    emit the pad."""
    from modelport.passes.distill.trainer import token_loss
    from tests.helpers.paths import DATA

    teacher = modelport.convert(str(DATA / "marian-trained" / "tiny11_ssru"), tmp_path / "teacher")
    bias = teacher.models[0].final_logits_bias
    assert not bias.isfinite().all()
    pairs, cfg = _small_pairs(teacher)
    student = fresh_student(cfg, 1, bias)
    assert torch.equal(student.final_logits_bias, bias)
    opts = TrainOptions(max_tokens=400, max_updates=4, log_every=1, warmup_updates=2, lr=1e-3, label_smoothing=0.1)
    result = train(student, pairs, opts, tmp_path / "work", World())
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"log.jsonl holds {c}"))
            for line in (tmp_path / "work" / "train" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 4 and all(0 < x < 100 for x in losses), losses
    assert torch.equal(result.state["final_logits_bias"], bias)
    # with every class emittable, the loss is torch's own label smoothing
    logits, target = torch.randn(6, 11), torch.tensor([1, 2, -100, 4, 5, 0])
    everything = torch.ones(11, dtype=torch.bool)
    assert torch.allclose(token_loss(logits, target, 0.1, everything), token_loss(logits, target, 0.1), atol=1e-5)


@pytest.mark.parametrize("where", ["inside the output", "holding the output", "inside the teacher",
                                   "inside the quantized output"])
def test_a_work_directory_overlapping_an_output_or_the_teacher_is_refused_up_front(where, teacher_dir, tmp_path,
                                                                                    capsys):
    """Inside OUTPUT_DIR it was deleted with its checkpoints when the output was written; inside the teacher
    it added files to the folder being read."""
    data = _write(tmp_path / "train.en", TRAIN[:8])
    out = tmp_path / "student"
    work = {"inside the output": out / "work", "holding the output": tmp_path,
            "inside the teacher": teacher_dir / "work", "inside the quantized output": tmp_path / "student-int8" / "w"}
    line = one_line_error(["distill", str(teacher_dir), str(out), "--data", str(data), "--then-quantize", "int8",
                           "--work-dir", str(work[where])], capsys)
    assert f"work directory `{work[where]}` and the" in line and "must lie apart" in line, line
    assert not out.exists() and not (teacher_dir / "work").exists()
