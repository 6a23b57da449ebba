# coding: utf-8
"""BibTeX of the plugin: pwem parses this module's docstring.

``spectools`` is the program itself, linked from the Methods text (``[spectools]``)
and not listed as a reference; each protocol lists the papers of the methods it
uses in its ``_references``, with DOIs.
"""
from spectools import __url__

__doc__ = """
@misc{spectools,
title = "spectools: averaged power spectra of aligned helical segments, aligned stacks, Thon-ring spectra and a cryoSPARC / RELION / SPIDER / Scipion format bridge",
author = "spectools developers",
journal = "Python package",
year = "2025",
url = "%s",
}

@article{DeRosier1970,
title = "Reconstruction of three-dimensional images from electron micrographs of structures with helical symmetry",
journal = "J. Mol. Biol.",
volume = "52",
number = "2",
pages = "355--369",
year = "1970",
author = "DeRosier, D. J. and Moore, P. B.",
doi = "https://doi.org/10.1016/0022-2836(70)90036-7",
}

@article{Klug1958,
title = "Diffraction by helical structures",
journal = "Acta Cryst.",
volume = "11",
pages = "199--213",
year = "1958",
author = "Klug, A. and Crick, F. H. C. and Wyckoff, H. W.",
doi = "https://doi.org/10.1107/S0365110X58000517",
}

@article{Cochran1952,
title = "The structure of synthetic polypeptides. I. The transform of atoms on a helix",
journal = "Acta Cryst.",
volume = "5",
pages = "581--586",
year = "1952",
author = "Cochran, W. and Crick, F. H. C. and Vand, V.",
doi = "https://doi.org/10.1107/S0365110X52001635",
}

@article{Unser1995,
title = "Convolution-based interpolation for fast, high-quality rotation of images",
journal = "IEEE Trans. Image Process.",
volume = "4",
number = "10",
pages = "1371--1381",
year = "1995",
author = "Unser, M. and Thévenaz, P. and Yaroslavsky, L.",
doi = "https://doi.org/10.1109/83.465102",
}

@article{Thon1966,
title = "Zur Defokussierungsabhängigkeit des Phasenkontrastes bei der elektronenmikroskopischen Abbildung",
journal = "Z. Naturforsch. A",
volume = "21",
number = "4",
pages = "476--478",
year = "1966",
author = "Thon, F.",
doi = "https://doi.org/10.1515/zna-1966-0417",
}

@article{Welch1967,
title = "The use of fast Fourier transform for the estimation of power spectra: a method based on time averaging over short, modified periodograms",
journal = "IEEE Trans. Audio Electroacoust.",
volume = "15",
number = "2",
pages = "70--73",
year = "1967",
author = "Welch, P.",
doi = "https://doi.org/10.1109/TAU.1967.1161901",
}

@article{Rohou2015,
title = "CTFFIND4: Fast and accurate defocus estimation from electron micrographs",
journal = "J. Struct. Biol.",
volume = "192",
number = "2",
pages = "216--221",
year = "2015",
author = "Rohou, A. and Grigorieff, N.",
doi = "https://doi.org/10.1016/j.jsb.2015.08.008",
}

@article{Punjani2017,
title = "cryoSPARC: algorithms for rapid unsupervised cryo-EM structure determination",
journal = "Nat. Methods",
volume = "14",
pages = "290--296",
year = "2017",
author = "Punjani, A. and Rubinstein, J. L. and Fleet, D. J. and Brubaker, M. A.",
doi = "https://doi.org/10.1038/nmeth.4169",
}

@misc{Asarnow2019,
title = "UCSF pyem v0.5",
journal = "Zenodo",
year = "2019",
author = "Asarnow, D. and Palovcak, E. and Cheng, Y.",
doi = "https://doi.org/10.5281/zenodo.3576630",
}
""" % __url__
