// Parses iCalendar files with Mozilla's ical.js (the parser of Thunderbird) and prints what it read as JSON.
// Usage: node parse.mjs FILE...   Exit status 1, with the error on stderr, when any file does not parse.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

// ical.js predates RFC 7986: declare its calendar name properties as the TEXT values they are.
for (const name of ["name", "x-wr-calname"]) {
  ICAL.design.icalendar.property[name] = { defaultType: "text" };
}

function text(component, name) {
  const value = component.getFirstPropertyValue(name);
  return value === null ? null : String(value);
}

function party(property) {
  return { value: String(property.getFirstValue()), cn: property.getParameter("cn") ?? null };
}

function read(path) {
  const calendar = new ICAL.Component(ICAL.parse(readFileSync(path, "utf8")));
  if (calendar.name !== "vcalendar") throw new Error(`${path}: the root component is ${calendar.name}`);
  const events = calendar.getAllSubcomponents("vevent").map((vevent) => {
    const event = new ICAL.Event(vevent);
    return {
      uid: event.uid,
      sequence: event.sequence,
      status: text(vevent, "status"),
      start: event.startDate.toJSDate().toISOString(),
      end: event.endDate.toJSDate().toISOString(),
      start_is_utc: event.startDate.zone === ICAL.Timezone.utcTimezone,
      dtstamp: vevent.getFirstPropertyValue("dtstamp").toJSDate().toISOString(),
      summary: event.summary,
      location: event.location,
      description: event.description,
      organizer: vevent.getAllProperties("organizer").map(party),
      attendees: vevent.getAllProperties("attendee").map(party),
    };
  });
  return {
    method: text(calendar, "method"),
    version: text(calendar, "version"),
    name: text(calendar, "name"),
    x_wr_calname: text(calendar, "x-wr-calname"),
    refresh_interval: text(calendar, "refresh-interval"),
    events,
  };
}

const results = [];
for (const path of process.argv.slice(2)) {
  try {
    results.push(read(path));
  } catch (error) {
    process.stderr.write(`${path}: ${error.stack ?? error}\n`);
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify(results));
