import numpy as np
from mmengine.evaluator import BaseMetric

from mmunseg.registry import METRICS


@METRICS.register_module()
class SurrogateIoUMetric(BaseMetric):
    """Mean IoU of the surrogate on clean and on noised images.

    Consumes the outputs of ``UnSeg.val_step``. A growing gap between the two
    shows the surrogate relying on the noise (the shortcut UnSeg plants).
    """

    default_prefix = 'surrogate'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append((sample['iou_clean'], sample['iou_noised']))

    def compute_metrics(self, results):
        clean, noised = np.asarray(results, dtype=np.float64).T
        return dict(
            miou_clean=float(clean.mean() * 100),
            miou_noised=float(noised.mean() * 100))
