import io

from sfray.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_stream_gets_whole_lines_with_rate_and_eta():
    out = io.StringIO()
    p = Progress(10, "generate", stream=out, min_interval=0.0)
    p.update(4, "shards 1")
    p.update(4, "shards 1")  # nothing new: no repeated line
    p.update(10, "shards 3, dropped:mask_iou 2")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0].startswith("generate: 4/10 (") and "ETA" in lines[0] and lines[0].endswith("shards 1")
    assert lines[1].startswith("generate: 10/10") and "dropped:mask_iou 2" in lines[1]


def test_terminal_gets_one_updating_line():
    out = Tty()
    p = Progress(5, "x", stream=out, min_interval=0.0)
    p.update(1)
    p.update(5)
    p.close()
    text = out.getvalue()
    assert text.count("\r") >= 2 and text.endswith("\n") and text.count("\n") == 1
