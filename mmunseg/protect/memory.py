"""How much memory protecting one image takes, known before reading it.

A very large image (say 12000 x 12000, under PIL's limit) needs gigabytes
on its way through the protector; running out of memory would abort the
whole job. The protector reads each image's size from its header, adds up
what the image will need and turns an image that cannot fit into one
``failed`` record, so the job goes on with the others.
"""
import os

#: Peak working memory of the protector itself per pixel, in bytes,
#: besides the method's: the decoded image, label map, object and class
#: maps, the fp32 budget, delta and float image, quantisation and SSIM's
#: float64 windows. Measured as the growth of the peak RSS over protecting
#: one 4000 x 3000 CamVid image (11 classes, upscaled): 290 to 296 with
#: every method but EM, whose own share comes on top; rounded up.
PROTECTOR_BYTES_PER_PIXEL = 320
#: SAM's automatic masks (``--prompt everything``, 16 x 16 points): the
#: masks of a batch of points at full resolution. Measured 780 on a
#: 2000 x 1500 image; rounded up (every kept mask adds 1 more).
AUTOMATIC_MASKS_BYTES_PER_PIXEL = 1000


def available_memory():
    """Bytes the job may use: the system's available memory now.

    Linux's ``MemAvailable`` (free memory plus what the page cache can give
    back); elsewhere the physical memory. None when neither is known.
    """
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (AttributeError, OSError, ValueError):
        return None


def format_size(size):
    """``1.5 GiB``: a size in bytes for people."""
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if size < 1024:
            return f'{size:.1f} {unit}' if unit != 'B' else f'{size} B'
        size /= 1024
    return f'{size:.1f} TiB'
