"""Operations: pure array functions, no files, no particle tables.

:mod:`.geometry` (rotations and affine matrices of the alignment convention),
:mod:`.resample` (imposing alignments on images), :mod:`.fourier` (Fourier-plane
layout), :mod:`.masks` (soft masks and normalisation), :mod:`.power` (sums of
power spectra and CTF^2), :mod:`.axis` (filament axis angle), :mod:`.layer_lines`
(helical layer-line theory), :mod:`.ctf` (the CTF), :mod:`.thon_rings` (Thon-ring
spectra and displays), :mod:`.detector` (gain, dark and hot-pixel corrections).
"""
