      *> Conformance: INDEXED and RELATIVE files of records longer than
      *> ESFH's key buffers (1 KiB), read every way, updated, deleted.
      *> Run plain (GnuCOBOL BDB) and with ESFH: same output.
       PROGRAM-ID. LONGCONF.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT IDX ASSIGN TO "LONGIDX"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY IDX-KEY
               ALTERNATE RECORD KEY IDX-CITY WITH DUPLICATES
               FILE STATUS FS.
           SELECT REL ASSIGN TO "LONGREL"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY REL-NUM
               FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD IDX.
       01 IDX-REC.
          05 IDX-KEY  PIC X(5).
          05 IDX-CITY PIC X(6).
          05 IDX-TEXT PIC X(3000).
          05 IDX-TAIL PIC X(5).
       FD REL.
       01 REL-REC.
          05 REL-TEXT PIC X(1500).
          05 REL-TAIL PIC X(5).
       WORKING-STORAGE SECTION.
       01 FS PIC XX.
       01 REL-NUM PIC 9(4).
       01 I PIC 9(2).
       01 CITIES PIC X(18) VALUE "PARIS ROME  OSLO  ".
       01 CITY-TABLE REDEFINES CITIES.
          05 CITY PIC X(6) OCCURS 3 TIMES.
       PROCEDURE DIVISION.
           OPEN OUTPUT IDX
           DISPLAY "open idx " FS
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 9
               MOVE SPACES TO IDX-REC
               STRING "K" I "00" DELIMITED BY SIZE INTO IDX-KEY
               MOVE CITY(FUNCTION MOD(I, 3) + 1) TO IDX-CITY
               MOVE ALL "X" TO IDX-TEXT
               STRING "T" I "-" DELIMITED BY SIZE INTO IDX-TAIL
               WRITE IDX-REC
               DISPLAY "write " IDX-KEY " " FS
           END-PERFORM
           CLOSE IDX
           OPEN I-O IDX
           MOVE "K0500" TO IDX-KEY
           READ IDX KEY IDX-KEY
           DISPLAY "read " FS " " IDX-KEY " " IDX-CITY " " IDX-TAIL
           MOVE "K0300" TO IDX-KEY
           START IDX KEY > IDX-KEY
           DISPLAY "start > K0300 " FS
           PERFORM 3 TIMES
               READ IDX NEXT
               DISPLAY "next " FS " " IDX-KEY " " IDX-TAIL
           END-PERFORM
           PERFORM 2 TIMES
               READ IDX PREVIOUS
               DISPLAY "previous " FS " " IDX-KEY " " IDX-TAIL
           END-PERFORM
           MOVE "ROME  " TO IDX-CITY
           START IDX KEY = IDX-CITY
           DISPLAY "start city " FS
           PERFORM 4 TIMES
               READ IDX NEXT
               DISPLAY "next city " FS " " IDX-KEY " " IDX-CITY
           END-PERFORM
           MOVE "K0700" TO IDX-KEY
           READ IDX KEY IDX-KEY
           MOVE "OSLO  " TO IDX-CITY
           MOVE "NEW-7" TO IDX-TAIL
           REWRITE IDX-REC
           DISPLAY "rewrite " FS
           MOVE "K0200" TO IDX-KEY
           DELETE IDX
           DISPLAY "delete " FS
           MOVE LOW-VALUES TO IDX-KEY
           START IDX KEY >= IDX-KEY
           DISPLAY "start first " FS
           PERFORM 10 TIMES
               READ IDX NEXT
               DISPLAY "all " FS " " IDX-KEY " " IDX-CITY " " IDX-TAIL
           END-PERFORM
           CLOSE IDX
           OPEN OUTPUT REL
           DISPLAY "open rel " FS
           PERFORM VARYING I FROM 1 BY 1 UNTIL I > 5
               MOVE ALL "R" TO REL-TEXT
               STRING "R" I "--" DELIMITED BY SIZE INTO REL-TAIL
               COMPUTE REL-NUM = I * 2
               WRITE REL-REC
               DISPLAY "write rel " REL-NUM " " FS
           END-PERFORM
           CLOSE REL
           OPEN I-O REL
           MOVE 6 TO REL-NUM
           READ REL
           DISPLAY "read rel " FS " " REL-NUM " " REL-TAIL
           MOVE 3 TO REL-NUM
           START REL KEY > REL-NUM
           DISPLAY "start rel " FS
           PERFORM 4 TIMES
               READ REL NEXT
               DISPLAY "next rel " FS " " REL-NUM " " REL-TAIL
           END-PERFORM
           MOVE 4 TO REL-NUM
           DELETE REL
           DISPLAY "delete rel " FS
           CLOSE REL
           STOP RUN.
