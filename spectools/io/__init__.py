"""File syntax: readers and writers that know nothing about alignments.

Each module handles one format: ``star`` (STAR text), ``csfile`` (cryoSPARC
``.cs`` structured arrays), ``spiderdoc`` (SPIDER document files),
``spiderimage`` (SPIDER binary images and stacks), ``mrc`` (MRC stacks),
and ``atomic`` (write-to-temporary-then-rename outputs).
"""
