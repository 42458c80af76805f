/*
 * Client for the esrt sample service srv01.CBLAPP01, using nothing but the JDK.
 *
 * It plays the part of the Java client in the original cluster report: call the service,
 * print "date time program host counter" per call. Watching the host and the counter shows
 * where each call ran and that no call was lost. The original started a new JVM per call;
 * this one loops inside one process and reuses one HttpClient, so calls share a keep-alive
 * connection.
 *
 * Run without compiling (Java 11+):  java CblApp01Client.java --url http://127.0.0.1:9003 --repeat 10
 * Or compile:                         javac CblApp01Client.java && java CblApp01Client --repeat 10
 *
 * Exit codes: 0 every call succeeded, 1 at least one call failed, 2 bad command line.
 */

import java.io.IOException;
import java.math.BigDecimal;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public final class CblApp01Client {

    static final String DEFAULT_URL = "http://127.0.0.1:9003";
    static final String DEFAULT_SERVICE = "srv01.CBLAPP01";
    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    // A COBOL call that hangs (e.g. a lock held by a dead SEP) must not hang the client forever.
    static final Duration CALL_TIMEOUT = Duration.ofSeconds(60);

    // Same shape as LK-DATETIME, so error lines line up with the successful ones.
    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yy/MM/dd HH:mm:ss.SS");

    static final String USAGE = String.join("\n",
            "usage: java CblApp01Client.java [--url URL] [--repeat N] [--service PACKAGE.PROGRAM]",
            "  --url URL          base URL of the esrt Web Services listener (default " + DEFAULT_URL + ")",
            "  --repeat N         number of calls, N >= 1 (default 1)",
            "  --service P.PROG   service to call (default " + DEFAULT_SERVICE + ")",
            "prints one line per call: date time program host counter");

    /** Thrown for a command line the client cannot use; the message says what to change. */
    static final class UsageError extends Exception {
        private static final long serialVersionUID = 1L;

        UsageError(String message) {
            super(message);
        }
    }

    /** Thrown when one call fails; the message becomes the ERROR line. */
    static final class CallError extends Exception {
        private static final long serialVersionUID = 1L;

        CallError(String message) {
            super(message);
        }
    }

    /** The parsed command line. */
    record Options(URI endpoint, String service, int repeat) {
    }

    public static void main(String[] args) {
        Options options;
        try {
            options = parseArgs(args);
        } catch (UsageError e) {
            System.err.println("CblApp01Client: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
            return;
        }
        if (options == null) {
            System.out.println(USAGE);
            return;
        }
        System.exit(run(options));
    }

    /** Parses the command line; returns null when help was asked for. */
    static Options parseArgs(String[] args) throws UsageError {
        String url = DEFAULT_URL;
        String service = DEFAULT_SERVICE;
        String repeat = "1";
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("-h") || arg.equals("--help")) {
                return null;
            }
            String value;
            String name;
            int eq = arg.indexOf('=');
            if (arg.startsWith("--") && eq > 0) {
                name = arg.substring(0, eq);
                value = arg.substring(eq + 1);
            } else {
                name = arg;
                if (i + 1 >= args.length) {
                    throw new UsageError(known(name)
                            ? "option " + name + " needs a value"
                            : "unknown argument \"" + arg + "\"; see the options below");
                }
                value = args[++i];
            }
            switch (name) {
                case "--url" -> url = value;
                case "--service" -> service = value;
                case "--repeat" -> repeat = value;
                default -> throw new UsageError("unknown option \"" + name + "\"; see the options below");
            }
        }
        return new Options(endpoint(url, service), service, repeatCount(repeat));
    }

    private static boolean known(String name) {
        return name.equals("--url") || name.equals("--service") || name.equals("--repeat");
    }

    private static int repeatCount(String text) throws UsageError {
        try {
            int n = Integer.parseInt(text.trim());
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through to the common message
        }
        throw new UsageError("--repeat \"" + text + "\" is not a whole number >= 1; give e.g. --repeat 10");
    }

    /** Builds {url}/services/{package}/{program} from the base URL and "package.program". */
    static URI endpoint(String url, String service) throws UsageError {
        String[] parts = service.split("\\.", -1);
        if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()
                || !parts[0].matches("[A-Za-z0-9_-]+") || !parts[1].matches("[A-Za-z0-9_-]+")) {
            throw new UsageError("--service \"" + service
                    + "\" is not PACKAGE.PROGRAM; give e.g. --service " + DEFAULT_SERVICE);
        }
        URI base;
        try {
            base = URI.create(url);
        } catch (IllegalArgumentException e) {
            base = null;
        }
        if (base == null || base.getHost() == null
                || !("http".equals(base.getScheme()) || "https".equals(base.getScheme()))) {
            throw new UsageError("--url \"" + url + "\" is not an http(s) URL with a host; give e.g. --url "
                    + DEFAULT_URL);
        }
        String trimmed = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
        return URI.create(trimmed + "/services/" + parts[0] + "/" + parts[1]);
    }

    /** Calls the service options.repeat() times; returns the process exit code. */
    static int run(Options options) {
        // HTTP/1.1 on purpose: the JDK's default (HTTP/2) would send an h2c upgrade on every
        // cleartext connection, which a plain HTTP/1.1 listener does not need to understand.
        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(CONNECT_TIMEOUT)
                .build();
        HttpRequest request = HttpRequest.newBuilder(options.endpoint())
                .timeout(CALL_TIMEOUT)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{}"))
                .build();
        int failures = 0;
        for (int i = 0; i < options.repeat(); i++) {
            try {
                System.out.println(formatReply(call(client, request)));
            } catch (CallError e) {
                failures++;
                // Like the original client: report the failed call and go on with the next one.
                System.err.println(LocalDateTime.now().format(STAMP) + " ERROR " + e.getMessage());
            }
        }
        System.out.flush();
        return failures == 0 ? 0 : 1;
    }

    private static Map<String, Object> call(HttpClient client, HttpRequest request) throws CallError {
        HttpResponse<String> response;
        try {
            response = client.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new CallError("cannot call " + request.uri() + ": " + reason(e)
                    + "; check that the region is started and its listener serves this address");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CallError("interrupted while calling " + request.uri());
        }
        int status = response.statusCode();
        Object body;
        try {
            body = Json.parse(response.body());
        } catch (IllegalArgumentException e) {
            throw new CallError("HTTP " + status + " from " + request.uri() + " with a body that is not JSON ("
                    + e.getMessage() + "): " + abbreviate(response.body()));
        }
        if (status < 200 || status > 299) {
            throw new CallError(describeError(status, body));
        }
        if (!(body instanceof Map)) {
            throw new CallError("reply from " + request.uri() + " is not a JSON object: " + abbreviate(response.body()));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> reply = (Map<String, Object>) body;
        return reply;
    }

    /** The first message along the cause chain; a refused connect has none at the top. */
    private static String reason(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() != null && !t.getMessage().isBlank()) {
                return t.getMessage();
            }
        }
        return e instanceof java.net.ConnectException ? "connection refused" : e.getClass().getSimpleName();
    }

    private static String describeError(int status, Object body) {
        if (body instanceof Map<?, ?> map && map.get("error") instanceof Map<?, ?> error) {
            Object code = error.get("code");
            Object message = error.get("message");
            return (code != null ? code + ": " : "") + (message != null ? message : "(no message)")
                    + " (HTTP " + status + ")";
        }
        return "HTTP " + status + " without an error object: " + abbreviate(String.valueOf(body));
    }

    /** Turns a CBLAPP01 reply into "date time program host counter". */
    static String formatReply(Map<String, Object> reply) throws CallError {
        String stamp = text(reply, "LK-DATETIME");
        String program = text(reply, "LK-PGMNAME");
        String host = text(reply, "LK-HOSTNAME");
        Object counter = reply.get("LK-COUNTER");
        long count;
        try {
            if (counter instanceof BigDecimal number) {
                count = number.longValueExact();
            } else if (counter instanceof String s) {
                count = Long.parseLong(s.trim());
            } else {
                throw new CallError("reply lacks LK-COUNTER; is this service CBLAPP01?");
            }
        } catch (ArithmeticException | NumberFormatException e) {
            throw new CallError("reply has LK-COUNTER " + counter + ", which is not a whole number");
        }
        // LK-DATETIME is "YY/MM/DD HH:MM:SS.hh"; split it so a malformed value still prints.
        String[] dateTime = stamp.split("\\s+", 2);
        String date = dateTime[0];
        String time = dateTime.length > 1 ? dateTime[1] : "-";
        return date + " " + time + " " + program + " " + host + " " + count;
    }

    private static String text(Map<String, Object> reply, String name) throws CallError {
        Object value = reply.get(name);
        if (!(value instanceof String s)) {
            throw new CallError("reply lacks " + name + " (has " + reply.keySet() + "); is this service CBLAPP01?");
        }
        // COBOL PIC X fields arrive padded with spaces.
        return s.strip();
    }

    private static String abbreviate(String s) {
        String one = s.replaceAll("\\s+", " ").strip();
        return one.length() <= 200 ? one : one.substring(0, 200) + "...";
    }

    /**
     * A small JSON reader: objects become LinkedHashMap, arrays ArrayList, numbers BigDecimal,
     * plus String, Boolean and null. Enough for service replies and error objects.
     */
    static final class Json {
        private final String s;
        private int pos;

        private Json(String s) {
            this.s = s;
        }

        /** Parses one JSON value; throws IllegalArgumentException naming the offset on bad input. */
        static Object parse(String text) {
            Json p = new Json(text);
            Object value = p.value();
            p.skipSpace();
            if (p.pos != p.s.length()) {
                throw p.error("unexpected text after the JSON value");
            }
            return value;
        }

        private Object value() {
            skipSpace();
            if (pos >= s.length()) {
                throw error("unexpected end of input");
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return object();
                case '[':
                    return array();
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    return number();
            }
        }

        private Map<String, Object> object() {
            Map<String, Object> map = new LinkedHashMap<>();
            pos++;
            skipSpace();
            if (peek() == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipSpace();
                if (peek() != '"') {
                    throw error("expected a member name in quotes");
                }
                String key = string();
                skipSpace();
                expect(':');
                map.put(key, value());
                skipSpace();
                char c = next();
                if (c == '}') {
                    return map;
                }
                if (c != ',') {
                    throw error("expected ',' or '}'");
                }
            }
        }

        private List<Object> array() {
            List<Object> list = new ArrayList<>();
            pos++;
            skipSpace();
            if (peek() == ']') {
                pos++;
                return list;
            }
            while (true) {
                list.add(value());
                skipSpace();
                char c = next();
                if (c == ']') {
                    return list;
                }
                if (c != ',') {
                    throw error("expected ',' or ']'");
                }
            }
        }

        private String string() {
            StringBuilder out = new StringBuilder();
            pos++;
            while (true) {
                char c = next();
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char e = next();
                switch (e) {
                    case '"', '\\', '/' -> out.append(e);
                    case 'b' -> out.append('\b');
                    case 'f' -> out.append('\f');
                    case 'n' -> out.append('\n');
                    case 'r' -> out.append('\r');
                    case 't' -> out.append('\t');
                    case 'u' -> {
                        if (pos + 4 > s.length()) {
                            throw error("short \\u escape");
                        }
                        try {
                            out.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw error("bad \\u escape");
                        }
                        pos += 4;
                    }
                    default -> throw error("bad escape \\" + e);
                }
            }
        }

        private BigDecimal number() {
            int start = pos;
            while (pos < s.length() && "+-0123456789.eE".indexOf(s.charAt(pos)) >= 0) {
                pos++;
            }
            try {
                return new BigDecimal(s.substring(start, pos));
            } catch (NumberFormatException e) {
                pos = start;
                throw error("expected a JSON value");
            }
        }

        private Object literal(String word, Object value) {
            if (!s.startsWith(word, pos)) {
                throw error("expected " + word);
            }
            pos += word.length();
            return value;
        }

        private void skipSpace() {
            while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) {
                pos++;
            }
        }

        private char peek() {
            return pos < s.length() ? s.charAt(pos) : '\0';
        }

        private char next() {
            if (pos >= s.length()) {
                throw error("unexpected end of input");
            }
            return s.charAt(pos++);
        }

        private void expect(char c) {
            if (next() != c) {
                pos--;
                throw error("expected '" + c + "'");
            }
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException(what + " at offset " + pos);
        }
    }
}
