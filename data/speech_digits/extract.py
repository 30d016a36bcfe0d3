"""Copy the spoken-digit recordings the speech chapter uses into data/speech_digits/, with their transcripts.

Needs the Debian packages `asterisk-core-sounds-en-wav` (the recordings) and `asterisk-core-sounds-en` (the
transcripts): `apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en`. The book and the tests read
only the committed copies; run this to regenerate them:

    python data/speech_digits/extract.py

The recordings are Allison Smith's prompts in /usr/share/asterisk/sounds/en_US_f_Allison/digits/ (8 kHz,
16-bit, mono): one take of each word, so a second take of a word does not exist to hold out. We keep the ten
digits `0.wav` ... `9.wav` ("zero" ... "nine") and `oh.wav` ("oh", the other way to say 0 in a phone number).
The files are copied byte for byte (not trimmed, not resampled). `transcripts.tsv` lists file, word (the
package's transcript, lower-cased), samples, sample rate and the file's SHA-256. Standard library only.
"""
import gzip
import hashlib
import shutil
import subprocess
import wave
from pathlib import Path

SOURCE = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
OUT = Path(__file__).resolve().parent
NAMES = [str(d) for d in range(10)] + ["oh"]
PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-en")
EXPECTED_VERSION = "1.6.1-1"        # the version LICENSE.md names


def transcripts() -> dict[str, str]:
    "`digits/<name>: <text>` lines of the package's transcript list -> {name: text}."
    out = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8") as f:
        for line in f:
            key, sep, text = line.partition(":")
            if sep and key.startswith("digits/"):
                out[key[len("digits/"):]] = text.strip()
    return out


def package_version(name: str) -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    if not SOURCE.is_dir() or not TRANSCRIPTS.is_file():
        raise SystemExit(f"{SOURCE} or {TRANSCRIPTS} missing: apt-get install {' '.join(PACKAGES)}")
    for p in PACKAGES:
        if (v := package_version(p)) != EXPECTED_VERSION:
            print(f"warning: {p} is version {v}, LICENSE.md names {EXPECTED_VERSION}; update it if the files differ")
    text = transcripts()
    (OUT / "wav").mkdir(exist_ok=True)
    rows = ["file\tword\tsamples\tsample_rate\tsha256"]
    for name in NAMES:
        src, dst = SOURCE / f"{name}.wav", OUT / "wav" / f"{name}.wav"
        with wave.open(str(src)) as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, 8000):
                raise SystemExit(f"{src}: expected 8 kHz 16-bit mono")
            samples, rate = w.getnframes(), w.getframerate()
        shutil.copyfile(src, dst)
        word = text[name].lower()
        rows.append(f"wav/{name}.wav\t{word}\t{samples}\t{rate}\t{hashlib.sha256(dst.read_bytes()).hexdigest()}")
    (OUT / "transcripts.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(NAMES)} recordings and transcripts.tsv to {OUT}")


if __name__ == "__main__":
    main()
