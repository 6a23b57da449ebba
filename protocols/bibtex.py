# coding: utf-8
"""
@misc{spectools,
title = "spectools: averaged power spectra of aligned helical segments, aligned stacks, Thon-ring spectra and a cryoSPARC / RELION / SPIDER / Scipion format bridge",
author = "spectools authors",
year = "2025",
note = "Python package, version as recorded in each run's JSON sidecar",
}

@article{DeRosier1970,
title = "Reconstruction of three-dimensional images from electron micrographs of structures with helical symmetry",
journal = "J. Mol. Biol.",
volume = "52",
number = "2",
pages = "355--369",
year = "1970",
author = "DeRosier, D. J. and Moore, P. B.",
}

@article{Klug1958,
title = "Diffraction by helical structures",
journal = "Acta Cryst.",
volume = "11",
pages = "199--213",
year = "1958",
author = "Klug, A. and Crick, F. H. C. and Wyckoff, H. W.",
}

@article{Cochran1952,
title = "The structure of synthetic polypeptides. I. The transform of atoms on a helix",
journal = "Acta Cryst.",
volume = "5",
pages = "581--586",
year = "1952",
author = "Cochran, W. and Crick, F. H. C. and Vand, V.",
}
"""
