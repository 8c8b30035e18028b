"""Function checks: is every camera recording a usable picture, with the right time, onto a disk
that can take it?

Control rooms run a daily check of every camera (it is in the codes of practice: "cameras are
checked daily to ensure they are recording and images carry the correct date and time"). A
function check does that check for them, on a schedule (`[health] times`, twice a day by
default) and on demand (`vmsctl health`), and keeps every report:

- per camera: state; frames and bytes received while the check watches (`[health] observe`)
  against the camera's usual frame rate and bitrate (its complete segments of the last day);
  the newest keyframe; gaps since local midnight; timing (camera clock rate against the
  recorder's, timestamp jumps, recorder clock steps);
- pictures: keyframes of the newest recorded footage are decoded (from the segment files, so
  what is checked is what was recorded) and judged with numpy: blank/black, frozen (identical
  across samples), obscured or defocused (very little detail);
- storage: free space against `min_free`, and the latency of a small fsync'd write;
- the recorder's clock: whether NTP has synchronised it (timedatectl).

Every finding has a severity (ok < warning < fail); the worst is the verdict. Each run is stored
in the catalogue, written to the audit trail (action `function_check`) and every warning or
failure is logged as an `alarm` event. Checks run one at a time.

The judging functions (`picture_stats`, `judge_pictures`, `judge_recording`) are pure, so the
thresholds are tested without cameras.

Modules: report (the report and its findings), thresholds, judging (pure), pictures (decoded
keyframes measured with numpy), schedule (when checks run), records (storing, auditing and
alarming reports), runner (`FunctionChecks`: one check, and the schedule).
"""
