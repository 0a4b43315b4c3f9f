"""What `p2p run` and `p2p translate` show in the terminal: the training display (`training`), laid out for
the terminal's width (`layout`), the end-of-run summary (`summary`) and the bar over translated files
(`files`)."""

from p2pcore.progress.files import file_progress
from p2pcore.progress.summary import end_of_run, summary_lines
from p2pcore.progress.training import TrainingProgress, train_with_progress

__all__ = ["TrainingProgress", "end_of_run", "file_progress", "summary_lines", "train_with_progress"]
