"""``spectools demo``: run spectools on a built-in example.

Until the averaged-spectrum command exists, the demo exercises the format
bridge: it writes a small particle set with known alignments as a RELION
STAR file, converts it to cryoSPARC and SPIDER metadata and back, and checks
that every file maps the example's motif to the same place.
"""
from pathlib import Path

import numpy as np

from ..formats import read_particles, write_particles
from ..model import particle_matrices
from ..examples import MOTIF_XY, example_table
from .info import format_summary, summarize

HELP = "run spectools on a built-in example and write the results to a folder"


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help=HELP, description=HELP + ".")
    parser.add_argument("-o", "--output", default="spectools-demo", help="output folder")
    parser.set_defaults(run=run)
    return parser


def run(args):
    out = Path(args.output)
    table = example_table(out)
    files = {"relion": out / "particles.star", "cryosparc": out / "particles.cs",
             "spider": out / "particles_doc.dat", "relion 3.0": out / "particles_relion30.star"}
    write_particles(table, files["relion"])
    star = read_particles(files["relion"])
    print(format_summary(summarize(star)))
    write_particles(star, files["cryosparc"])
    write_particles(star, files["spider"])
    write_particles(star, files["relion 3.0"], relion_version="3.0")

    truth = particle_matrices(table)
    print("\nWhere each file puts the motif's first blob (max deviation from the truth):")
    worst = 0.0
    for name, path in files.items():
        options = {"stack": out / "particles.mrcs"} if name == "spider" else {}
        back = read_particles(path, **options)
        dev = _max_deviation(truth, particle_matrices(back))
        worst = max(worst, dev)
        print(f"  {name:11s} {path}: {dev:.2e} px")
    print(f"\n{'OK' if worst < 1e-3 else 'MISMATCH'}: all formats agree to {worst:.1e} px")
    return 0 if worst < 1e-3 else 1


def _max_deviation(m1, m2):
    """Largest distance between where two sets of matrices map the raw motif."""
    raw = np.einsum("nij,kj->nki", np.linalg.inv(m1),
                    np.concatenate([MOTIF_XY, np.ones((len(MOTIF_XY), 1))], 1))
    q1 = np.einsum("nij,nkj->nki", m1, raw)
    q2 = np.einsum("nij,nkj->nki", m2, raw)
    return float(np.abs(q1 - q2).max())
