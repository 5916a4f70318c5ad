import numpy as np
from mmseg.evaluation import IoUMetric

from mmunseg.registry import METRICS


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """MMSeg's ``IoUMetric`` that also returns each class's IoU.

    MMSeg only prints the per-class table; a protection report compares
    classes (the large, easy ones survive weak noise), so they are returned
    as ``IoU.<class name>`` in percent, NaN-free (a class absent from both
    prediction and label gets NaN in MMSeg and is left out here).
    """

    def compute_metrics(self, results):
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        intersect = sum(result[0] for result in results).numpy()
        union = sum(result[1] for result in results).numpy()
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = intersect / union
        for name, value in zip(self.dataset_meta['classes'], iou):
            if np.isfinite(value):
                metrics[f'IoU.{name}'] = round(float(value) * 100, 2)
        return metrics
