-- The course service's schema, verbatim from the calendar-domain spec. Run once, by setup.py.
CREATE TABLE courses (
  id          bigint PRIMARY KEY,
  title       text NOT NULL,
  description text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE lectures (
  id         bigint PRIMARY KEY,
  course_id  bigint NOT NULL REFERENCES courses(id),
  title      text NOT NULL,
  starts_at  timestamptz NOT NULL,
  ends_at    timestamptz NOT NULL,
  room       text,
  cancelled  boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE enrollments (
  course_id  bigint NOT NULL REFERENCES courses(id),
  user_id    bigint NOT NULL,
  status     text NOT NULL CHECK (status IN ('active', 'dropped')),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (course_id, user_id)
);
