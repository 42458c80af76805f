      *> ---------------------------------------------------------------
      *> CBLAPP01 - sample service: where and when did this call run?
      *>
      *> Called with four LINKAGE items, all output:
      *>   LK-DATETIME  date and time of the call, YY/MM/DD HH:MM:SS.hh
      *>   LK-PGMNAME   this program's name
      *>   LK-HOSTNAME  the host it ran on (C gethostname)
      *>   LK-COUNTER   the counter kept in indexed file APPFILE01, read
      *>                before it is incremented, so successive calls
      *>                return 0, 1, 2, ...
      *>
      *> APPFILE01 is named by the environment (ASSIGN TO EXTERNAL):
      *> GnuCOBOL takes the file name from DD_APPFILE01, dd_APPFILE01 or
      *> APPFILE01, in that order. Create it first with INITFILE1.
      *>
      *> RETURN-CODE: 0 on success. 8 when APPFILE01 cannot be opened,
      *> read or rewritten: LK-COUNTER is then all zeros and a message
      *> naming the file status is DISPLAYed on stderr.
      *> ---------------------------------------------------------------
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CBLAPP01.

       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT APPFILE ASSIGN TO EXTERNAL APPFILE01
               ORGANIZATION IS INDEXED
               ACCESS MODE IS RANDOM
               RECORD KEY IS RKEY
               FILE STATUS IS WS-FILE-STATUS.

       DATA DIVISION.
       FILE SECTION.
       FD  APPFILE.
       01  AF-RECORD.
           05  RKEY                PIC X(6).
           05  AF-COUNTER          PIC 9(10).

       WORKING-STORAGE SECTION.
       01  WS-PROGRAM-NAME         PIC X(10) VALUE "CBLAPP01".
       01  WS-FILE-NAME            PIC X(9)  VALUE "APPFILE01".
       01  WS-FILE-STATUS          PIC XX.
           88  WS-FILE-OK                    VALUE "00".
       01  WS-FAILED-STEP          PIC X(7).
       01  WS-NOW.
           05  WS-NOW-YYYY.
               10  FILLER          PIC 99.
               10  WS-NOW-YY       PIC 99.
           05  WS-NOW-MM           PIC 99.
           05  WS-NOW-DD           PIC 99.
           05  WS-NOW-HH           PIC 99.
           05  WS-NOW-MI           PIC 99.
           05  WS-NOW-SS           PIC 99.
           05  WS-NOW-HS           PIC 99.
           05  FILLER              PIC X(5).

       LINKAGE SECTION.
       01  LK-DATETIME             PIC X(20).
       01  LK-PGMNAME              PIC X(10).
       01  LK-HOSTNAME             PIC X(20).
       01  LK-COUNTER              PIC 9(10).

       PROCEDURE DIVISION USING LK-DATETIME LK-PGMNAME LK-HOSTNAME
                                LK-COUNTER.
       MAIN-PARA.
           MOVE 0 TO RETURN-CODE
           PERFORM FILL-DATETIME
           MOVE WS-PROGRAM-NAME TO LK-PGMNAME
           PERFORM FILL-HOSTNAME
           PERFORM BUMP-COUNTER
           GOBACK.

       FILL-DATETIME.
           MOVE FUNCTION CURRENT-DATE TO WS-NOW
           STRING WS-NOW-YY "/" WS-NOW-MM "/" WS-NOW-DD " "
                  WS-NOW-HH ":" WS-NOW-MI ":" WS-NOW-SS "." WS-NOW-HS
                  DELIMITED BY SIZE INTO LK-DATETIME.

       FILL-HOSTNAME.
      *>   gethostname writes a C string: it leaves a NUL terminator
      *>   (and, on truncation, maybe none), so blank the field first
      *>   and turn any NUL into a space to keep it a clean PIC X.
           MOVE SPACES TO LK-HOSTNAME
           CALL "gethostname" USING BY REFERENCE LK-HOSTNAME
                                    BY VALUE LENGTH OF LK-HOSTNAME
           END-CALL
           INSPECT LK-HOSTNAME REPLACING ALL LOW-VALUE BY SPACE
      *>   gethostname's own result is not this program's RETURN-CODE.
           MOVE 0 TO RETURN-CODE.

       BUMP-COUNTER.
           MOVE ZEROS TO LK-COUNTER
           OPEN I-O APPFILE
           IF NOT WS-FILE-OK
               MOVE "OPEN" TO WS-FAILED-STEP
               PERFORM FILE-FAILED
           ELSE
               MOVE SPACES TO RKEY
               READ APPFILE
               IF NOT WS-FILE-OK
                   MOVE "READ" TO WS-FAILED-STEP
                   PERFORM FILE-FAILED
               ELSE
                   MOVE AF-COUNTER TO LK-COUNTER
                   ADD 1 TO AF-COUNTER
                   REWRITE AF-RECORD
                   IF NOT WS-FILE-OK
                       MOVE "REWRITE" TO WS-FAILED-STEP
                       PERFORM FILE-FAILED
                   END-IF
               END-IF
               CLOSE APPFILE
           END-IF.

       FILE-FAILED.
           MOVE ZEROS TO LK-COUNTER
           DISPLAY FUNCTION TRIM(WS-PROGRAM-NAME) ": "
                   FUNCTION TRIM(WS-FAILED-STEP)
                   " of file " WS-FILE-NAME " failed with file status "
                   WS-FILE-STATUS "; run INITFILE1 to create it, and"
                   " set DD_APPFILE01 to its path" UPON SYSERR
           MOVE 8 TO RETURN-CODE.
