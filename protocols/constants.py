"""Names the spectools protocols share: output files, form choices, labels."""

#: How the plugin names itself in protocol labels, summaries and the Methods tab.
PLUGIN_LABEL = "spectools"

#: Files each protocol writes in its run's extra folder.
AVGPS_OUTPUT = "avgps.mrc"
AVGPS_SIDECAR = "avgps.json"
AVGPS_CLASSES = "avgps_classes.mrcs"
AVGPS_PNG = "avgps.png"
AVGPS_GROUPS = "avgps_groups.mrcs"
AVGPS_PARITY = "avgps_parity.mrc"
#: The refined metadata (Scipion tables are written as RELION STAR).
AVGPS_REFINED = "avgps_refined.star"
INDEX_TABLE = "index.csv"
INDEX_SIDECAR = "index.json"
INDEX_PNG = "index.png"
STACK_BASENAME = "aligned"
STACK_SIDECAR = "aligned.json"

#: Aligned-stack formats: extension and label.
STACK_FORMATS = ("mrcs", "spi")
STACK_FORMAT_LABELS = ("MRC stack", "SPIDER stack")

#: Labels of the gain rotation and flip choices (RELION's --gain_rot, --gain_flip).
GAIN_ROT_LABELS = ("0: none", "1: 90 deg", "2: 180 deg", "3: 270 deg")
GAIN_FLIP_LABELS = ("0: none", "1: upside down", "2: left to right")

#: cryoSPARC 2D pose readings, as the import form shows them.
CS2D_CONVENTION_LABELS = ("pyem: psi = +pose, origin = +shift (default)",
                          "helicon: psi = -pose, origin = -shift")

#: Unit suffixes of option keywords that form parameter names leave out
#: (``tube_diameter_a`` is the form parameter ``tubeDiameter``).
UNIT_SUFFIXES = ("_a", "_px", "_deg", "_kv", "_mm")
