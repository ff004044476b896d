"""Lineage benchmark, recurrent and conv families: do verdicts hold where fixed tables and gates are?

Two families of really trained models, each from many seeds (the null) plus derivatives of seed 0:

* a Silero-like voice-activity detector: a fixed Hann-windowed STFT basis stored as a Conv1d weight
  ``stft.forward_basis_buffer`` ``[2 * bins, 1, n_fft]`` (bit-identical in every model, never
  trained), a three-layer Conv1d encoder, a recurrent decoder and a 1x1 conv output. Half the seeds
  use an LSTM saved under ``nn.LSTMCell`` names (``decoder.rnn.weight_ih``, as Silero does), half a
  GRU under ``nn.GRU`` names (``decoder.gru.weight_ih_l0``). The task: find the frames of a clip
  that hold a tone burst in coloured noise;
* a conv-only front end: a small 2-D CNN with batch norm (ResNet-style names) classifying the
  oriented-bar images of ``bench/lineage.py``.

Every model sees the same data (one generator, fixed seed); seeds change the initialisation and the
batch order. Derivatives of seed 0: a light fine-tune on shifted data (other tone band and noise
colour / other bar phases), noised copies, an int8 round trip, and for the LSTM the same weights
re-exported under ``nn.LSTM`` names (``lstm.weight_ih_l0``). Comparisons, table and summary are
those of ``bench/lineage.py``.

    .venv/bin/python bench/lineage_audio.py --seeds 12 --conv-seeds 8 --threads 1  # bench/RESULTS.md
    .venv/bin/python bench/lineage_audio.py --seeds 3 --steps 30                   # a quick look
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineage  # noqa: E402
from lineage import Row, _line, _torch, compare_case, images, markdown, noised, quantised, summary  # noqa: E402

N_FFT, HOP, CLIP = 64, 32, 544  # 16 STFT frames per clip
BINS = N_FFT // 2 + 1
WIDTH = 32  # encoder channels and recurrent state


# -- data ---------------------------------------------------------------------------------------------


def clips(seed: int, n: int, *, shift: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Clips of coloured noise, half with a tone burst; labels say which STFT frames hold it.

    ``shift`` moves the tones to a higher band and the noise to a redder colour (a new domain)."""
    rng = np.random.default_rng(seed)
    t = np.arange(CLIP)
    white = rng.standard_normal((n, CLIP))
    colour = 0.9 if shift else 0.5  # one-pole low-pass: redder noise for larger values
    noise = np.empty_like(white)
    noise[:, 0] = white[:, 0]
    for i in range(1, CLIP):
        noise[:, i] = colour * noise[:, i - 1] + white[:, i]
    noise *= rng.uniform(0.2, 1.0, (n, 1)) / noise.std(axis=1, keepdims=True)
    low, high = (0.2, 0.45) if shift else (0.05, 0.3)  # cycles per sample
    freq = rng.uniform(low, high, (n, 1))
    start = rng.integers(0, CLIP - 128, (n, 1))
    length = rng.integers(96, 256, (n, 1))
    present = rng.random((n, 1)) < 0.5
    inside = (t >= start) & (t < start + length) & present
    tone = rng.uniform(0.3, 1.0, (n, 1)) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    audio = (noise + inside * tone).astype(np.float32)
    centres = np.arange(0, CLIP - N_FFT + 1, HOP) + N_FFT // 2
    return audio, inside[:, centres].astype(np.float32)


def pictures(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``lineage.images`` put back together as ``[n, 3, 16, 16]`` images."""
    patches, labels = images(seed, n)
    return patches.reshape(n, 4, 4, 3, 4, 4).transpose(0, 3, 1, 4, 2, 5).reshape(n, 3, 16, 16), labels


def stft_basis() -> np.ndarray:
    """Silero's ``forward_basis_buffer``: Hann-windowed cos and -sin rows, ``[2 * bins, 1, n_fft]``."""
    t = np.arange(N_FFT)
    angle = 2 * np.pi * np.arange(BINS)[:, None] * t / N_FFT
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * t / N_FFT)
    return np.concatenate([np.cos(angle) * hann, -np.sin(angle) * hann])[:, None, :].astype(np.float32)


# -- models -------------------------------------------------------------------------------------------


def build(family: str, seed: int):
    """``lstm`` or ``gru`` (the VAD) or ``cnn``, initialised from ``seed``."""
    torch = _torch()
    torch.manual_seed(seed)
    vad, cnn = _classes()
    return cnn() if family == "cnn" else vad(family)


@functools.cache
def _classes():
    torch = _torch()
    nn = torch.nn

    class Stft(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("forward_basis_buffer", torch.from_numpy(stft_basis()))

        def forward(self, audio):
            spec = nn.functional.conv1d(audio[:, None], self.forward_basis_buffer, stride=HOP)
            return (spec[:, :BINS] ** 2 + spec[:, BINS:] ** 2 + 1e-6).log()

    class Decoder(nn.Module):
        def __init__(self, cell):
            super().__init__()
            setattr(
                self,
                "rnn" if cell == "lstm" else "gru",
                getattr(nn, cell.upper())(WIDTH, WIDTH, batch_first=True),
            )
            self.cell = cell
            self.out = nn.Conv1d(WIDTH, 1, 1)

        def forward(self, x):
            states, _ = getattr(self, "rnn" if self.cell == "lstm" else "gru")(x.transpose(1, 2))
            return self.out(states.transpose(1, 2))[:, 0]

    class Vad(nn.Module):
        def __init__(self, cell):
            super().__init__()
            self.stft = Stft()
            self.encoder = nn.Sequential(
                nn.Conv1d(BINS, WIDTH, 3, padding=1),
                nn.ReLU(),
                nn.Conv1d(WIDTH, WIDTH, 3, padding=1),
                nn.ReLU(),
                nn.Conv1d(WIDTH, WIDTH, 3, padding=1),
                nn.ReLU(),
            )
            self.decoder = Decoder(cell)

        def forward(self, audio):
            return self.decoder(self.encoder(self.stft(audio)))

    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
            self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
            self.conv3, self.bn3 = nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
            self.fc = nn.Linear(32, 4)

        def forward(self, x):
            f = nn.functional
            x = f.max_pool2d(f.relu(self.bn1(self.conv1(x))), 2)
            x = f.max_pool2d(f.relu(self.bn2(self.conv2(x))), 2)
            return self.fc(f.relu(self.bn3(self.conv3(x))).mean((2, 3)))

    return Vad, Cnn


def train(net, steps: int, data: tuple[np.ndarray, np.ndarray], *, lr: float = 3e-3, seed: int = 0) -> None:
    """AdamW, batches of 32: per-frame BCE (VAD clips) or cross-entropy (CNN images)."""
    torch = _torch()
    gen = np.random.default_rng(seed)
    f = torch.nn.functional
    loss = f.cross_entropy if data[1].ndim == 1 else f.binary_cross_entropy_with_logits
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    net.train()
    for _ in range(steps):
        idx = gen.integers(len(data[1]), size=32)
        value = loss(net(torch.from_numpy(data[0][idx])), torch.from_numpy(data[1][idx]))
        opt.zero_grad()
        value.backward()
        opt.step()
    net.eval()


def weights(net, *, lstm_names: bool = False) -> dict[str, np.ndarray]:
    """The state dict as saved; the VAD's LSTM under ``nn.LSTMCell`` names (``decoder.rnn.weight_ih``)
    or, with ``lstm_names``, re-exported under ``nn.LSTM`` names (``lstm.weight_ih_l0``)."""
    out = {}
    for name, value in net.state_dict().items():
        if name.startswith("decoder.rnn."):
            name = "lstm." + name.removeprefix("decoder.rnn.") if lstm_names else name.removesuffix("_l0")
        out[name] = value.detach().numpy().copy()
    return out


# -- the run ------------------------------------------------------------------------------------------

FAMILIES = {"lstm": "recurrent", "gru": "recurrent", "cnn": "conv"}
# The component whose p-values are checked for uniformity: the VAD's encoder and decoder make a
# ``language_model`` (its STFT basis alone is ``other``, excluded); the CNN's names are all ``other``.
CALIBRATED = {"lstm": "language_model", "gru": "language_model", "cnn": "other"}


def run(
    seeds: int = 30,
    *,
    steps: int = 100,
    conv_seeds: int | None = None,
    folder: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, list[Row]]:
    """Train, derive, compare; rows by family (``recurrent``: LSTM and GRU VADs, ``conv``: CNNs).

    ``seeds`` models per recurrent cell; ``conv_seeds`` CNNs (default ``seeds``)."""
    folder = Path(folder or tempfile.mkdtemp(prefix="lineage-audio-"))
    rows: dict[str, list[Row]] = {"recurrent": [], "conv": []}
    for family, count in (("lstm", seeds), ("gru", seeds), ("cnn", conv_seeds or seeds)):
        rows[FAMILIES[family]] += family_rows(family, count, steps, folder / family, log)
    return rows


def family_rows(family: str, count: int, steps: int, folder: Path, log: Callable[[str], None]) -> list[Row]:
    """``count`` models of one family from scratch, derivatives of the first, and their comparisons."""
    from scratchcheck import synthetic

    t0 = time.perf_counter()
    data, shifted = (
        (pictures(0, 4000), pictures(1, 2000))
        if family == "cnn"
        else (clips(0, 4000), clips(1, 2000, shift=True))
    )
    saved: dict[str, Path] = {}

    def save(name: str, w: dict[str, np.ndarray]) -> Path:
        saved[name] = synthetic.save(w, folder / name)
        return saved[name]

    def case(name: str, truth: str, suspect: str, reference: str) -> Row:
        return compare_case(name, truth, saved[suspect], saved[reference], calibrated=CALIBRATED[family])

    bases = []
    for seed in range(count):
        bases.append(build(family, seed))
        train(bases[-1], steps, data, seed=seed)
        save(f"base{seed}", weights(bases[-1]))
    log(f"{family}: trained {count} models in {time.perf_counter() - t0:.0f} s")

    tuned = build(family, 0)
    tuned.load_state_dict(bases[0].state_dict())
    light = max(1, steps // 5)
    train(tuned, light, shifted, lr=1e-3, seed=101)
    parent = weights(bases[0])
    derived = {
        f"fine-tune light ({light} steps, lr 1e-3, shifted data)": weights(tuned),
        "noised copy (sigma = std/700)": noised(parent, 1 / 700, 105),
        "noised copy (sigma = std/10)": noised(parent, 0.1, 106),
        "int8 per-row round trip": quantised(parent, 8),
    }
    if family == "lstm":
        derived["re-exported under nn.LSTM names"] = weights(bases[0], lstm_names=True)
    rows = []
    for name, w in derived.items():
        short = name.split(" (")[0].replace(" ", "_")
        save(short, w)
        rows.append(case(f"{family}: {name}", "derived", short, "base0"))
        log(_line(rows[-1]))

    # The null: neighbours and long-range pairs of bases; derivatives of base 0 against others.
    pairs = [(i, i + 1) for i in range(count - 1)] + [
        (i, (i + count // 2) % count) for i in range(count // 2)
    ]
    for i, j in dict.fromkeys(pairs):
        rows.append(case(f"base{i} vs base{j} ({family})", "independent", f"base{i}", f"base{j}"))
    for k, name in enumerate(list(saved)[count:]):
        other = f"base{1 + k % max(1, count - 1)}"
        rows.append(case(f"{family}: {name} vs {other}", "independent", name, other))
    log(f"{family}: done in {time.perf_counter() - t0:.0f} s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30, help="models per recurrent cell (LSTM, GRU)")
    parser.add_argument("--conv-seeds", type=int, help="CNNs (default: --seeds)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", type=Path, help="write rows and summaries here")
    parser.add_argument("--threads", type=int, default=lineage.THREADS, help="torch CPU threads")
    args = parser.parse_args()
    lineage.THREADS = args.threads
    rows = run(args.seeds, steps=args.steps, conv_seeds=args.conv_seeds)
    summaries = {family: summary(family_rows) for family, family_rows in rows.items()}
    for family, family_rows in rows.items():
        print(f"\n### {family}\n")
        print(markdown(family_rows, summaries[family]))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    family: {"rows": [r.__dict__ for r in rs], "summary": summaries[family]}
                    for family, rs in rows.items()
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
