"""The pix2pix paper's perceptual study, run locally: real or generated, which fools people how often.

`pair_images` pairs the files, `StudyServer` serves the page and saves the answers, `read_sessions`
and `summarize` turn result files into a fooling rate with its confidence interval. No torch.
"""

from p2pcore.study.pairs import Pairs, pair_images
from p2pcore.study.plan import Trial, make_plan
from p2pcore.study.results import read_session, read_sessions
from p2pcore.study.server import StudyServer, StudySettings
from p2pcore.study.summary import StudySummary, bootstrap_interval, summarize

__all__ = ["Pairs", "StudyServer", "StudySettings", "StudySummary", "Trial", "bootstrap_interval", "make_plan",
           "pair_images", "read_session", "read_sessions", "summarize"]
