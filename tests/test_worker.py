"""The worker process and its contract (:mod:`inference.protocol`), without Blender.

The worker is started as the extension starts it (``python -u -m inference.worker``);
requests are built with the same dataclasses the extension uses.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from inference import protocol
from inference.errors import ProtocolError
from inference.protocol import GenerateRequest, TakeInfo

REPO = Path(__file__).resolve().parents[1]
ANSWER_SECONDS = 300


class Worker:
    """``python -m inference.worker`` in a subprocess; a thread reads its events, so no wait hangs."""

    def __init__(self, cwd: Path = REPO, preexec_fn=None):
        env = {**os.environ, "PYTHONPATH": str(cwd)}
        self.proc = subprocess.Popen([sys.executable, "-u", "-m", "inference.worker"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1, preexec_fn=preexec_fn)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # the process ended

    def send(self, line: str) -> None:
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def event(self) -> dict:
        try:
            line = self.lines.get(timeout=ANSWER_SECONDS)
        except queue.Empty:
            raise AssertionError(f"the worker said nothing for {ANSWER_SECONDS} s") from None
        assert line, f"the worker ended (exit status {self.proc.poll()})"
        return json.loads(line)

    def until(self, *names: str) -> list[dict]:
        """Events up to and including the first one called one of ``names``."""
        events = []
        while not events or events[-1]["event"] not in names:
            events.append(self.event())
        return events

    def close(self) -> int:
        self.send(protocol.QUIT_LINE)
        self.proc.stdin.close()
        return self.proc.wait(timeout=ANSWER_SECONDS)


@pytest.fixture
def worker():
    w = Worker()
    try:
        assert w.event()["event"] == protocol.READY
        yield w
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def test_generate_request_reports_the_defined_stages(worker, song, tiny_weights, tmp_path):
    output = tmp_path / "dance.npz"
    request = GenerateRequest(audio=str(song), output=str(output), start=1.0, duration=3.0, seed=2, sampler="ddim",
                              steps=2, guidance=2.0, device="cpu", weights=str(tiny_weights))
    worker.send(protocol.request_line(7, request))
    events = worker.until(protocol.DONE, protocol.ERROR)
    assert events[-1]["event"] == protocol.DONE, events[-1]
    assert events[-1]["id"] == 7 and events[-1]["output"] == str(output) and events[-1]["frames"] == 90
    progress = [e for e in events if e["event"] == protocol.PROGRESS]
    assert {e["id"] for e in progress} == {7}
    stages = list(dict.fromkeys(e["stage"] for e in progress))
    assert stages == [protocol.LOADING.name, protocol.FEATURES.name, protocol.SAMPLING.name,
                      protocol.FINISHING.name]
    assert set(stages) <= set(protocol.STAGES)
    sampling = [e for e in progress if e["stage"] == protocol.SAMPLING.name]
    assert sampling[-1]["done"] == sampling[-1]["total"]
    with np.load(output) as d:
        assert d["smpl_poses"].shape == (90, 72) and int(d["seed"]) == 2 and str(d["sampler"]) == "ddim"
    assert worker.close() == 0


def test_bad_requests_get_error_events_and_the_worker_carries_on(worker, tmp_path):
    worker.send("this is not json\n")
    event = worker.event()
    assert event["event"] == protocol.ERROR and event["id"] is None and event["kind"] == "ProtocolError"

    worker.send(json.dumps({"cmd": "generate", "id": 2, "audio": "a.wav", "output": "b.npz", "colour": "red"}) + "\n")
    event = worker.event()
    assert (event["event"], event["id"], event["kind"]) == (protocol.ERROR, 2, "ProtocolError")
    assert "colour" in event["message"]

    worker.send(json.dumps({"cmd": "generate", "id": 3, "audio": "a.wav"}) + "\n")
    event = worker.event()
    assert event["id"] == 3 and event["kind"] == "ProtocolError" and "output" in event["message"]

    worker.send(json.dumps({"cmd": "dance", "id": 4}) + "\n")
    event = worker.event()
    assert event["id"] == 4 and event["kind"] == "ProtocolError" and "dance" in event["message"]

    missing = tmp_path / "missing.wav"
    worker.send(protocol.request_line(5, GenerateRequest(audio=str(missing), output=str(tmp_path / "x.npz"))))
    event = worker.until(protocol.DONE, protocol.ERROR)[-1]
    assert event["id"] == 5 and event["kind"] == "AudioError" and str(missing) in event["message"]

    worker.send(protocol.request_line(6, protocol.ProbeRequest()))
    event = worker.event()
    assert event["event"] == protocol.PROBE and event["id"] == 6 and "torch" in event["versions"]
    assert worker.close() == 0


def test_requests_round_trip_and_refuse_what_the_contract_does_not_know():
    request = GenerateRequest(audio="song.ogg", output="/tmp/dance.npz", start=12.5, duration=30.0, seed=3,
                              sampler="ddim", steps=50, guidance=2.0, constraints="/tmp/pins.npz")
    cmd, request_id, back = protocol.parse_request(json.loads(protocol.request_line(9, request)))
    assert (cmd, request_id, back) == ("generate", 9, request)
    fields = request.to_dict()
    with pytest.raises(ProtocolError, match="unknown field shoes"):
        GenerateRequest.from_dict({**fields, "shoes": 2})
    with pytest.raises(ProtocolError, match="missing field audio"):
        GenerateRequest.from_dict({k: v for k, v in fields.items() if k != "audio"})
    with pytest.raises(ProtocolError, match="'seed' must be an int"):
        GenerateRequest.from_dict({**fields, "seed": "3"})
    with pytest.raises(ProtocolError, match="'beat_snap' must be a bool"):
        GenerateRequest.from_dict({**fields, "beat_snap": 1})
    with pytest.raises(ProtocolError, match="'sampler' must be a str or null"):
        GenerateRequest.from_dict({**fields, "sampler": 2})
    assert GenerateRequest.from_dict({"audio": "a.wav", "output": "b.npz", "start": 0}).start == 0.0
    assert protocol.parse_request({"cmd": protocol.QUIT}) == (protocol.QUIT, None, None)


def test_stage_labels_and_progress_shares():
    names = list(protocol.STAGES)
    assert names == ["starting", "loading", "features", "sampling", "finishing"]
    spans = [(s.start, s.end) for s in protocol.STAGES.values()]
    assert spans[0][0] == 0.0 and spans[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert protocol.SAMPLING.fraction(25, 50) == pytest.approx(0.56)
    assert protocol.stage("later").label == "Later" and protocol.stage("later").fraction(1, 2) == 0.5


def test_take_info_round_trip_and_old_records():
    request = GenerateRequest(audio="a.wav", output="b.npz", seed=5, sampler="dpmpp_2m", steps=20, guidance=2.0,
                              foot_lock=False)
    made = TakeInfo.of_request(request, audio="/music/a.wav", strip="a", audio_start=1.5, frame_start=1,
                               frame_end=90, fps=30.0)
    stored = made.to_dict()
    assert stored["sampler"] == "dpmpp_2m" and stored["steps"] == 20
    assert "mode" not in stored and "regenerated" not in stored  # Generate Dance: no edit fields
    assert TakeInfo.from_dict(stored) == made and made.frames == (1, 90)
    edit = TakeInfo.of_request(request, frame_start=1, frame_end=90, fps=30.0, mode="RANGE",
                               regenerated=(10, 20), source="Dance", pins=2)
    stored = json.loads(json.dumps(edit.to_dict()))  # as Blender keeps it: the pair becomes a list
    assert stored["regenerated"] == [10, 20] and TakeInfo.from_dict(stored) == edit
    old = {"audio": "a.wav", "strip": "a", "audio_start": 0.0, "seed": 1, "steps": 50, "guidance": 2.0,
           "frame_start": 1, "frame_end": 30, "fps": 30.0, "retired": True}  # an earlier version's record
    info = TakeInfo.from_dict(old)
    assert info.beat_snap and info.foot_lock and info.mode == "" and info.frames == (1, 30)
    assert info.sampler == "ddim"  # made before the sampler was recorded: by DDIM
    assert TakeInfo.from_dict({}).frames is None and TakeInfo.from_dict(None) is None


def test_generate_command_names_the_pins():
    line = protocol.generate_command("/music/a song.wav", "dance.npz", 1.5, 20.0, 3, "/tmp/pins.npz")
    assert line == ('python -m inference generate "/music/a song.wav" -o dance.npz --start 1.500000 '
                    '--duration 20.000000 --seed 3 --constraints "/tmp/pins.npz"')


def test_a_setting_out_of_range_is_refused_not_blamed_on_the_weights(worker, song, tiny_weights, tmp_path):
    """Guidance 1e6 used to be sampled, sent the dancer kilometres away and ended in "the weights may be
    damaged"; the engine refuses it by name before any work."""
    output = tmp_path / "dance.npz"
    request = GenerateRequest(audio=str(song), output=str(output), duration=2.0, steps=2, guidance=1e6,
                              device="cpu", weights=str(tiny_weights))
    worker.send(protocol.request_line(1, request))
    events = worker.until(protocol.DONE, protocol.ERROR)
    event = events[-1]
    assert event["event"] == protocol.ERROR and event["kind"] == "M2DError", event
    assert "Guidance must be between 0 and 10" in event["message"] and "weights" not in event["message"]
    assert not any(e.get("stage") == protocol.SAMPLING.name for e in events) and not output.exists()
    assert worker.close() == 0


def test_a_body_that_cannot_be_written_leaves_no_partial_file(tmp_path):
    """The extension reuses a body file it finds (a cache per SMPL model): a half-written one, left by a
    full disk, used to break every later generation with that model."""
    from smpl_file import write_synthetic_smpl
    from write_failures import files_at_most

    write_synthetic_smpl(tmp_path / "SMPL_TEST.pkl")
    output = tmp_path / "body.npz"
    worker = Worker(preexec_fn=files_at_most(8_000))  # the body takes about 12 kB
    try:
        assert worker.event()["event"] == protocol.READY
        worker.send(protocol.request_line(1, protocol.SmplMeshRequest(model=str(tmp_path / "SMPL_TEST.pkl"),
                                                                       output=str(output))))
        event = worker.until(protocol.DONE, protocol.ERROR)[-1]
        assert (event["event"], event["kind"]) == (protocol.ERROR, "FileError"), event
        assert "File too large" in event["message"] and "Free some disk space" in event["message"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["SMPL_TEST.pkl"]
        assert worker.close() == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
