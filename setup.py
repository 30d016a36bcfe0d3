"""Package metadata from settings.ini (nbdev 2's single source of truth).

nbdev's template setup.py imports `pkg_resources`, which current setuptools no longer ships,
so this small version reads settings.ini with the standard library only.
"""
from configparser import ConfigParser

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

licenses = {"apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License")}
statuses = ["Planning", "Pre-Alpha", "Alpha", "Beta", "Production/Stable", "Mature", "Inactive"]
lic = licenses[cfg["license"]]
py_versions = ["3.10", "3.11", "3.12", "3.13", "3.14"]
min_python = cfg["min_python"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=lic[0],
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    packages=setuptools.find_packages(include=[cfg["lib_path"], cfg["lib_path"] + ".*"]),
    include_package_data=True,
    # py.typed: the library has type annotations (PEP 561); assets: the attention view's script and style
    package_data={cfg["lib_path"]: ["py.typed", "assets/*"]},
    install_requires=cfg.get("requirements", "").split(),
    extras_require={"apps": cfg.get("apps_requirements", "").split(),
                    "dev": cfg.get("dev_requirements", "").split()},
    python_requires=">=" + min_python,
    classifiers=[
        "Development Status :: " + str(int(cfg["status"]) + 1) + " - " + statuses[int(cfg["status"])],
        "Intended Audience :: " + cfg["audience"],
        "License :: " + lic[1],
        "Natural Language :: " + cfg["language"],
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ]
    + ["Programming Language :: Python :: " + v for v in py_versions[py_versions.index(min_python):]],
    zip_safe=False,
)
