"""How quickly `profilebot roster import` loads a district's OneRoster export, as people run it.

    .venv/bin/python bench/oneroster.py [--students N] [--repeat R] [--write] [--json] [--check]

The export is written by this script (OneRoster 1.1 CSV, with a manifest): ``--students``
(5,000) students; a teacher for every 25, each teaching a homeroom (so advising its 25
students) and five scheduled sections; each student in a homeroom and five sections; an
administrator per 500 students and a guardian per student (left out by the import); names
with commas, a byte-order mark on users.csv, empty optional columns, a birth date for every
student in demographics.csv. Each round, on fresh migrated SQLite databases:

- ``profilebot roster import DIR --json`` (everyone added), then the same folder again
  (everyone unchanged): each a process of its own, timed from start to exit (the target is
  on the first);
- the baseline, in the same round: ``profilebot people import FILE --json`` of the same
  people as one CSV (the same groups, the homeroom teacher as advisor, the emails), also a
  process;
- ``python -c pass``: what any Python command costs here.

Medians over ``--repeat`` (3) rounds. ``--write`` replaces the section
``## OneRoster import (bench/oneroster.py)`` of docs/benchmarks.md; ``--check`` exits 1 when
the target is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path: put the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common
from storage import Database

SECTION = "## OneRoster import (bench/oneroster.py)"
TARGET_S = 15.0
STUDENTS_PER_TEACHER = 25
SECTIONS_PER_STUDENT = 5
STUDENTS_PER_ADMIN = 500
STAMP = "2026-09-01T08:00:00.000Z"


class District:
    """Who is who in the generated district, and its files."""

    def __init__(self, students: int) -> None:
        self.students = students
        self.teachers = max(1, students // STUDENTS_PER_TEACHER)
        self.admins = max(1, students // STUDENTS_PER_ADMIN)

    def people(self) -> int:
        return self.students + self.teachers + self.admins

    def homeroom(self, s: int) -> int:
        return s % self.teachers

    def sections(self, s: int) -> list[int]:
        """The sections a student is in: section k*teachers + t is taught by teacher t."""
        return [
            k * self.teachers + (s + 7 * k) % self.teachers for k in range(SECTIONS_PER_STUDENT)
        ]

    def section_title(self, n: int) -> str:
        subject = ("Math", "English", "Science", "History", "Art")[n // self.teachers]
        return f"{subject} {n % self.teachers}, Period {n // self.teachers + 1}"


def write_export(folder: Path, d: District) -> None:
    folder.mkdir()
    _write(
        folder / "manifest.csv",
        ["propertyName", "value"],
        [
            ["manifest.version", "1.0"],
            ["oneroster.version", "1.1"],
            *[
                [f"file.{n}", "bulk"]
                for n in (
                    "academicSessions",
                    "classes",
                    "demographics",
                    "enrollments",
                    "orgs",
                    "users",
                )
            ],
            ["source.systemName", "Bench SIS, Inc."],
        ],
    )
    _write(
        folder / "orgs.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "name",
            "type",
            "identifier",
            "parentSourcedId",
        ],
        [["org-1", "", "", "Bench District, North", "district", "BD", ""]],
    )
    _write(
        folder / "academicSessions.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "type",
            "startDate",
            "endDate",
            "parentSourcedId",
            "schoolYear",
        ],
        [["term-1", "", "", "Fall 2026", "term", "2026-08-24", "2026-12-18", "", "2027"]],
    )
    users: list[list[str]] = []
    for t in range(d.teachers):
        users.append(
            [
                f"t{t}",
                "active",
                STAMP,
                "true",
                "org-1",
                "teacher",
                f"teacher{t}",
                "",
                "Teacher",
                f"Number {t}",
                "",
                "",
                f"teacher{t}@district.example",
                "",
                "",
            ]
        )
    for a in range(d.admins):
        users.append(
            [
                f"a{a}",
                "",
                STAMP,
                "true",
                "org-1",
                "administrator",
                f"admin{a}",
                "",
                "Admin",
                f"Number {a}",
                "",
                "",
                f"admin{a}@district.example",
                "",
                "",
            ]
        )
    for s in range(d.students):
        users.append(
            [
                f"s{s}",
                "active",
                STAMP,
                "true",
                "org-1",
                "student",
                f"student{s}",
                "",
                "Student",
                f"Number {s}, Jr.",
                "",
                "",
                f"student{s}@district.example",
                "",
                "07",
            ]
        )
        users.append(
            [
                f"g{s}",
                "active",
                STAMP,
                "true",
                "org-1",
                "guardian",
                f"guardian{s}",
                "",
                "Guardian",
                f"Of {s}",
                "",
                "",
                "",
                f"s{s}",
                "",
            ]
        )
    _write(
        folder / "users.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "userIds",
            "givenName",
            "familyName",
            "middleName",
            "identifier",
            "email",
            "agentSourcedIds",
            "grades",
        ],
        users,
        bom=True,
    )
    classes = [
        [f"hr{t}", "", "", f"Homeroom {t}", "07", "", f"HR{t}", "homeroom", "", "org-1", "term-1"]
        for t in range(d.teachers)
    ]
    classes += [
        [f"c{n}", "", "", d.section_title(n), "07", "", f"C{n}", "scheduled", "", "org-1", "term-1"]
        for n in range(d.teachers * SECTIONS_PER_STUDENT)
    ]
    _write(
        folder / "classes.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
        ],
        classes,
    )
    enrollments: list[list[str]] = []
    for t in range(d.teachers):
        enrollments.append([f"et{t}", "", "", f"hr{t}", "org-1", f"t{t}", "teacher", "true"])
        enrollments += [
            [f"et{t}-{k}", "", "", f"c{k * d.teachers + t}", "org-1", f"t{t}", "teacher", "true"]
            for k in range(SECTIONS_PER_STUDENT)
        ]
    for s in range(d.students):
        enrollments.append(
            [f"es{s}", "", "", f"hr{d.homeroom(s)}", "org-1", f"s{s}", "student", ""]
        )
        enrollments += [
            [f"es{s}-{n}", "", "", f"c{n}", "org-1", f"s{s}", "student", ""] for n in d.sections(s)
        ]
    _write(
        folder / "enrollments.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
        ],
        enrollments,
    )
    _write(
        folder / "demographics.csv",
        ["sourcedId", "status", "dateLastModified", "birthDate"],
        [[f"s{s}", "", "", f"2013-{s % 12 + 1:02d}-{s % 28 + 1:02d}"] for s in range(d.students)],
    )


def write_people_csv(path: Path, d: District) -> None:
    """The same people as one `people import` file (the baseline)."""
    rows = [
        [
            f"Teacher Number {t}",
            "teacher",
            f"teacher{t}",
            ";".join(
                [f"Homeroom {t}"]
                + [d.section_title(k * d.teachers + t) for k in range(SECTIONS_PER_STUDENT)]
            ),
            "",
            f"teacher{t}@district.example",
        ]
        for t in range(d.teachers)
    ]
    rows += [
        [f"Admin Number {a}", "admin", f"admin{a}", "", "", f"admin{a}@district.example"]
        for a in range(d.admins)
    ]
    rows += [
        [
            f"Student Number {s}, Jr.",
            "student",
            f"student{s}",
            ";".join([f"Homeroom {d.homeroom(s)}"] + [d.section_title(n) for n in d.sections(s)]),
            f"teacher{d.homeroom(s)}",
            f"student{s}@district.example",
        ]
        for s in range(d.students)
    ]
    _write(path, ["name", "role", "handle", "group", "advisor", "email"], rows)


def _write(path: Path, header: list[str], rows: list[list[str]], *, bom: bool = False) -> None:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)


def fresh_database(workdir: Path) -> str:
    url = f"sqlite:///{workdir / f'oneroster-{uuid.uuid4().hex[:8]}.db'}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    return url


def run(url: str, args: list[str], workdir: Path) -> tuple[float, dict[str, int]]:
    """A ``profilebot`` command in a process of its own: seconds, and its JSON."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROFILEBOT_FLOWS_DIR", "LOG_LEVEL")}
    env["DATABASE_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.ROOT), env.get("PYTHONPATH")]))
    program = Path(sys.executable).parent / "profilebot"
    started = time.perf_counter()
    done = subprocess.run(
        [str(program), *args, "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {done.stderr.strip()}")
    return elapsed, json.loads(done.stdout)


def floor_s() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    d = District(args.students)
    export, people_csv = workdir / "export", workdir / "people.csv"
    write_export(export, d)
    write_people_csv(people_csv, d)
    runs: dict[str, list[float]] = {"first": [], "again": [], "baseline": []}
    floors: list[float] = []
    problems: list[str] = []
    everyone = d.people()
    for round_number in range(1, args.repeat + 1):
        floors.append(floor_s())
        url = fresh_database(workdir)
        first, counts = run(url, ["roster", "import", str(export)], workdir)
        again, counts_again = run(url, ["roster", "import", str(export)], workdir)
        baseline, counts_base = run(
            fresh_database(workdir), ["people", "import", str(people_csv)], workdir
        )
        if counts != {"added": everyone, "updated": 0, "deactivated": 0, "unchanged": 0}:
            problems.append(f"first roster import said {counts}")
        if counts_again != {"added": 0, "updated": 0, "deactivated": 0, "unchanged": everyone}:
            problems.append(f"second roster import said {counts_again}")
        if counts_base != {"added": everyone, "updated": 0, "unchanged": 0}:
            problems.append(f"people import said {counts_base}")
        runs["first"].append(first)
        runs["again"].append(again)
        runs["baseline"].append(baseline)
        print(f"round {round_number}/{args.repeat} done", file=sys.stderr)
    sections = d.teachers * SECTIONS_PER_STUDENT
    return {
        "students": d.students,
        "people": everyone,
        "classes": d.teachers + sections,
        "enrollments": d.teachers * (1 + SECTIONS_PER_STUDENT)
        + d.students * (1 + SECTIONS_PER_STUDENT),
        "guardians": d.students,
        "repeat": args.repeat,
        "machine": common.machine_info(),
        "date": date.today().isoformat(),
        "code": common.code_version(),
        "floor_s": common.median(floors),
        "medians": {k: common.median(v) for k, v in runs.items()},
        "runs": runs,
        "problems": problems,
    }


def render(report: dict[str, Any], command: str) -> str:
    m = report["medians"]
    lines = [
        SECTION,
        "",
        f"`profilebot roster import` of a district's OneRoster 1.1 export written by the "
        f"benchmark: {report['students']:,} students, {report['people']:,} people imported "
        f"(a teacher per {STUDENTS_PER_TEACHER} students, an administrator per "
        f"{STUDENTS_PER_ADMIN}), {report['guardians']:,} guardians left out, "
        f"{report['classes']:,} classes (a homeroom per teacher, whose teacher advises its "
        f"students) and {report['enrollments']:,} enrollments, a birth date per student, names "
        "with commas, a byte-order mark. Each import is a process of its own on a fresh "
        "migrated SQLite database, timed from start to exit; then the same folder again "
        "(nothing changes). The baseline, measured in the same rounds: `profilebot people "
        "import` of the same people as one CSV (the same groups, the homeroom teacher as "
        f"advisor, the emails). Medians over {report['repeat']} rounds; `python -c pass` took "
        f"{report['floor_s'] * 1e3:.0f} ms.",
        "",
        "| command | median | vs. the baseline |",
        "|---|---|---|",
        f"| `roster import` (all added) | {m['first']:.2f} s | {m['first'] / m['baseline']:.2f}× |",
        f"| `roster import` again (all unchanged) | {m['again']:.2f} s | "
        f"{m['again'] / m['baseline']:.2f}× |",
        f"| `people import` of the same people (baseline) | {m['baseline']:.2f} s | 1× |",
        "",
        *common.targets_table(
            [
                (
                    f"`roster import` of a {report['students']:,}-student district, SQLite "
                    f"< {TARGET_S:.0f} s",
                    f"{m['first']:.2f} s",
                    m["first"] < TARGET_S,
                )
            ],
            report["problems"],
        ),
        "",
        *common.provenance(command, report, f"SQLite {report['machine']['sqlite']}"),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = common.report_options(__doc__, repeat=3)
    parser.add_argument("--students", type=int, default=5_000)
    args, report = common.run_report(parser, "bench/oneroster.py", SECTION, bench, render)
    if args.check and (report["medians"]["first"] >= TARGET_S or report["problems"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
