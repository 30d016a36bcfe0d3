"""Package metadata from settings.ini (nbdev 2's single source of truth).

nbdev's template setup.py imports `pkg_resources`, which current setuptools no longer ships,
so this small version reads settings.ini with the standard library only.
"""
import shutil
from configparser import ConfigParser
from pathlib import Path

import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

licenses = {"apache2": "Apache-2.0"}  # SPDX expressions (setuptools has deprecated license classifiers)
statuses = ["Planning", "Pre-Alpha", "Alpha", "Beta", "Production/Stable", "Mature", "Inactive"]
lic = licenses[cfg["license"]]
py_versions = ["3.10", "3.11", "3.12", "3.13", "3.14"]
min_python = cfg["min_python"]

# The files the chapters read, copied into the package (attn_tutorial/_files/<path>), so that a chapter downloaded
# alone runs wherever the package is installed: the corpora with their licences, the long runs' results, the
# benchmark tables, the pretrained chapter's reference outputs and the table of contents (the conclusion's list
# of chapters). Not the extraction scripts (the repository is
# where the files are made again) nor the long run's extra plays (only its script reads them).
BOOK_FILES = ["data/**/*", "nbs/results/*.json", "bench/results/*.json", "tests/fixtures/minilm_reference.json",
              "_toc.yml"]
LEFT_OUT = {"extract.py", "more_plays.txt"}


class BuildWithBookFiles(build_py):
    "build_py, then the book's files under attn_tutorial/_files/."

    def run(self):
        super().run()
        root, target = Path(__file__).parent, Path(self.build_lib) / cfg["lib_path"] / "_files"
        for pattern in BOOK_FILES:
            for path in sorted(root.glob(pattern)):
                if path.is_file() and path.name not in LEFT_OUT:
                    (target / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target / path.relative_to(root))


setuptools.setup(
    cmdclass={"build_py": BuildWithBookFiles},
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=lic,
    license_files=["LICENSE"],
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    packages=setuptools.find_packages(include=[cfg["lib_path"], cfg["lib_path"] + ".*"]),
    include_package_data=True,
    # py.typed: the library has type annotations (PEP 561); assets: the attention view's script and style
    package_data={cfg["lib_path"]: ["py.typed", "assets/*"]},
    install_requires=cfg.get("requirements", "").split(),
    extras_require={"apps": cfg.get("apps_requirements", "").split(),
                    "kernels": cfg.get("kernels_requirements", "").split(),
                    "dev": cfg.get("dev_requirements", "").split()},
    python_requires=">=" + min_python,
    classifiers=[
        "Development Status :: " + str(int(cfg["status"]) + 1) + " - " + statuses[int(cfg["status"])],
        "Intended Audience :: " + cfg["audience"],
        "Natural Language :: " + cfg["language"],
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ]
    + ["Programming Language :: Python :: " + v for v in py_versions[py_versions.index(min_python):]],
    zip_safe=False,
)
