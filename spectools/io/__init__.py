"""File syntax: readers and writers that know nothing about alignments.

Each module handles one format: ``star`` (STAR text), ``csfile`` (cryoSPARC
``.cs`` structured arrays), ``spiderdoc`` (SPIDER document files),
``spiderimage`` (SPIDER binary images and stacks), ``mrc`` (MRC headers read
into a layout, MRC stacks written), ``tiff`` (TIFF and EER frames).  On top
of them: ``stacks`` (particle stacks of either image format, cached reads)
and ``frames`` (micrographs, movies and gain references of either MRC or
TIFF, frame by frame; every reader is a ``frame_source.FrameSource``).
Shared by all: ``atomic`` (outputs that appear complete or not at all, and
the one rule that no output replaces an input), ``files`` (inputs checked
before they are opened: regular files only), ``memory`` (available memory
and disk space), ``pixel_values`` (NaN, infinite and absurd pixels), ``stats``
(running header statistics), ``pixel_size`` (when a header pixel size means
"unset") and ``positioned`` (positioned reads).
"""
