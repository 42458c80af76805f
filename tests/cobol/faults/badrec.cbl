      * BADREC: reads and updates files that hold records and index
      * entries of lengths the files cannot have (a damaged file, or one
      * written with another layout). "BADREC LOAD" writes sound files;
      * the test then damages some of their entries behind ESFH's back;
      * "BADREC CHECK" goes through them. ESFH must answer 30 (a
      * permanent error) for each damaged entry, never read past it or
      * the buffer it was read into, and keep serving the sound ones.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. BADREC.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT IDX ASSIGN TO "DAMAGED"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY IDX-KEY
               ALTERNATE RECORD KEY IDX-CITY WITH DUPLICATES
               FILE STATUS FS.
           SELECT REL ASSIGN TO "DAMREL"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY REL-NUM
               FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD IDX.
       01 IDX-REC.
          05 IDX-KEY  PIC X(5).
          05 IDX-CITY PIC X(6).
          05 IDX-TEXT PIC X(9).
       FD REL.
       01 REL-REC    PIC X(10).
       WORKING-STORAGE SECTION.
       01 FS         PIC XX.
       01 REL-NUM    PIC 9(4).
       01 STEP       PIC X(8).
       01 I          PIC 9.
       PROCEDURE DIVISION.
           ACCEPT STEP FROM COMMAND-LINE
           IF STEP = "LOAD"
               PERFORM LOAD-FILES
           ELSE
               PERFORM CHECK-INDEXED
               PERFORM CHECK-RELATIVE
           END-IF
           STOP RUN.

       LOAD-FILES.
           OPEN OUTPUT IDX
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 3
               MOVE SPACES TO IDX-REC
               STRING "K000" I DELIMITED BY SIZE INTO IDX-KEY
               MOVE "PARIS" TO IDX-CITY
               STRING "record " I DELIMITED BY SIZE INTO IDX-TEXT
               WRITE IDX-REC
           END-PERFORM
           CLOSE IDX
           OPEN OUTPUT REL
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 3
               MOVE I TO REL-NUM
               MOVE SPACES TO REL-REC
               STRING "slot " I DELIMITED BY SIZE INTO REL-REC
               WRITE REL-REC
           END-PERFORM
           CLOSE REL
           DISPLAY "loaded".

       CHECK-INDEXED.
           OPEN I-O IDX
           DISPLAY "open " FS
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 3
               MOVE SPACES TO IDX-REC
               STRING "K000" I DELIMITED BY SIZE INTO IDX-KEY
               READ IDX KEY IDX-KEY
               DISPLAY "read K000" I " " FS " " IDX-TEXT
           END-PERFORM
           MOVE "K0002" TO IDX-KEY
           DELETE IDX
           DISPLAY "delete K0002 " FS
           MOVE "K0003" TO IDX-KEY
           MOVE "PARIS" TO IDX-CITY
           REWRITE IDX-REC
           DISPLAY "rewrite K0003 " FS
           MOVE "K0001" TO IDX-KEY
           START IDX KEY >= IDX-KEY
           DISPLAY "start K0001 " FS
           PERFORM 2 TIMES
               MOVE SPACES TO IDX-REC
               READ IDX NEXT
               DISPLAY "next " FS " " IDX-KEY
           END-PERFORM
           MOVE "PARIS" TO IDX-CITY
           START IDX KEY = IDX-CITY
           DISPLAY "start PARIS " FS
           PERFORM 2 TIMES
               MOVE SPACES TO IDX-REC
               READ IDX NEXT
               DISPLAY "next by city " FS " " IDX-KEY
           END-PERFORM
           MOVE "ROME" TO IDX-CITY
           READ IDX KEY IDX-CITY
           DISPLAY "read ROME " FS
           MOVE "K0004" TO IDX-KEY
           START IDX KEY >= IDX-KEY
           DISPLAY "start K0004 " FS
           CLOSE IDX
           DISPLAY "close " FS.

       CHECK-RELATIVE.
           OPEN I-O REL
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 3
               MOVE SPACES TO REL-REC
               MOVE I TO REL-NUM
               READ REL
               DISPLAY "read slot " I " " FS " " REL-REC
           END-PERFORM
           MOVE 2 TO REL-NUM
           DELETE REL
           DISPLAY "delete slot 2 " FS
           CLOSE REL
           DISPLAY "close " FS.
