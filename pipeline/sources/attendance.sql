-- The attendance service's schema, verbatim from the calendar-domain spec. Run once, by setup.py.
CREATE TABLE attendance_windows (
  id         bigint PRIMARY KEY,
  lecture_id bigint NOT NULL,          -- a lecture of the course service
  opens_at   timestamptz NOT NULL,
  closes_at  timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
